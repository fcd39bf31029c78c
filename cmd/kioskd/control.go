package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

// The control socket lets kioskd's own commands (admin add, backup) act on
// a running daemon, which holds the database's lock. It is a unix socket in
// the data directory, mode 0600: whoever may read the database may use it.
const controlSocket = "control.sock"

// controlAccount is an account sent over the control socket: the password
// is hashed by the command, so it never leaves that process.
type controlAccount struct {
	Email        string             `json:"email"`
	Role         models.AccountRole `json:"role"`
	PasswordHash string             `json:"password_hash"`
}

// openControl serves the control socket until Close.
func (m *Main) openControl() error {
	path := m.dataPath(controlSocket)
	// A socket left by a killed daemon is stale: the store's lock proved
	// no other daemon runs on this data directory.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /accounts", m.handleControlAccount)
	mux.HandleFunc("POST /backup", m.handleControlBackup)
	mux.HandleFunc("POST /status", m.handleControlStatus)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	m.addCloser(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		os.Remove(path)
		return err
	})
	return nil
}

func (m *Main) handleControlAccount(w http.ResponseWriter, r *http.Request) {
	var in controlAccount
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	acc := &models.LocalAccount{Email: in.Email, Role: in.Role, PasswordHash: in.PasswordHash, Source: models.SourceLocal, UpdatedAt: time.Now().UTC()}
	if !models.ValidEmail(acc.Email) || !acc.Role.Valid() || acc.PasswordHash == "" {
		http.Error(w, "bad request: email, role and password_hash are required", http.StatusBadRequest)
		return
	}
	if err := m.DB.PutAccount(r.Context(), acc); err != nil {
		http.Error(w, models.ErrorMessage(err), http.StatusInternalServerError)
		return
	}
	m.logger("main").Info("account added through the control socket", "email", acc.Email, "role", acc.Role)
	w.WriteHeader(http.StatusNoContent)
}

func (m *Main) handleControlBackup(w http.ResponseWriter, r *http.Request) {
	path, err := m.Jobs.RunBackup()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"file": path})
}

// controlStatus is what the running daemon tells `kioskd doctor`.
type controlStatus struct {
	Version string               `json:"version"`
	Ready   string               `json:"ready"` // "" when ready, else why not
	Camera  *device.CameraStatus `json:"camera,omitempty"`
	Sync    *ksync.Status        `json:"sync,omitempty"`
}

func (m *Main) handleControlStatus(w http.ResponseWriter, r *http.Request) {
	st := controlStatus{Version: Version}
	if err := m.ready(); err != nil {
		st.Ready = models.ErrorMessage(err)
	}
	if m.Pipeline != nil {
		cs := m.Pipeline.Status()
		st.Camera = &cs
	}
	if m.Sync != nil {
		ss := m.Sync.Status()
		st.Sync = &ss
	}
	_ = json.NewEncoder(w).Encode(st)
}

// errNoDaemon means no daemon answers on the control socket.
var errNoDaemon = errors.New("no kioskd daemon runs on this data directory")

// callControl posts body to the running daemon's control socket and decodes
// its answer into out (when not nil). It returns errNoDaemon when nothing
// listens there.
func (m *Main) callControl(ctx context.Context, path string, body, out any) error {
	sock := m.dataPath(controlSocket)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://kioskd"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
			return errNoDaemon
		case errors.Is(err, syscall.EACCES):
			return fmt.Errorf("control socket %s: permission denied: run this as root or the daemon's user (sudo kioskd ...)", sock)
		}
		return fmt.Errorf("control socket %s: %w", sock, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("the running kioskd refused: %s", bytes.TrimSpace(msg))
	}
	if out != nil {
		return json.Unmarshal(msg, out)
	}
	return nil
}
