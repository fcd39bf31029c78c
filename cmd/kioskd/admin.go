package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/password"
)

// runAdmin handles `kioskd admin add --email E --role R`: the password is
// read from stdin (never a flag, so it stays out of shell history and ps).
func (m *Main) runAdmin(ctx context.Context) error {
	if len(m.Args) == 0 || m.Args[0] != "add" {
		return fmt.Errorf("admin: usage: kioskd admin add --email E --role admin|technician (password on stdin)")
	}
	fs := flag.NewFlagSet("admin add", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	email := fs.String("email", "", "the account's email")
	role := fs.String("role", string(models.AccountTechnician), "admin or technician")
	if err := fs.Parse(m.Args[1:]); err != nil {
		return err
	}
	acc := &models.LocalAccount{
		Email:  strings.ToLower(strings.TrimSpace(*email)),
		Role:   models.AccountRole(*role),
		Source: models.SourceLocal,
	}
	if !models.ValidEmail(acc.Email) {
		return fmt.Errorf("admin add: --email %q is not a valid address", *email)
	}
	if !acc.Role.Valid() {
		return fmt.Errorf("admin add: --role %q must be admin or technician", *role)
	}
	pw, err := readPassword(m.Stdin)
	if err != nil {
		return fmt.Errorf("admin add: %w", err)
	}
	if err := password.ValidatePassword(pw, acc.Email); err != nil {
		return fmt.Errorf("admin add: password: %s", models.ErrorMessage(err))
	}
	if acc.PasswordHash, err = password.HashPassword(pw); err != nil {
		return fmt.Errorf("admin add: hash password: %w", err)
	}
	// A running daemon holds the store: hand it the account.
	err = m.callControl(ctx, "/accounts", controlAccount{Email: acc.Email, Role: acc.Role, PasswordHash: acc.PasswordHash}, nil)
	if errors.Is(err, errNoDaemon) {
		err = m.putAccountOffline(ctx, acc)
	}
	if err != nil {
		return fmt.Errorf("admin add: %w", err)
	}
	return json.NewEncoder(m.Stdout).Encode(map[string]any{"email": acc.Email, "role": acc.Role, "created": true})
}

// putAccountOffline writes the account straight into the store of a
// stopped daemon.
func (m *Main) putAccountOffline(ctx context.Context, acc *models.LocalAccount) error {
	if err := m.openStore(); err != nil {
		return fmt.Errorf("%w (if kioskd runs from another data directory or an older version, stop it first: systemctl stop kioskd)", err)
	}
	if err := m.DB.PutAccount(ctx, acc); err != nil {
		return err
	}
	return m.chownData()
}

// readPassword reads the first line of r (a pipe or a terminal).
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password on stdin (pipe it in: echo \"$PW\" | kioskd admin add ...)")
	}
	return line, nil
}
