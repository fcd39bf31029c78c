package bolt_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
)

// crashChildEnv makes the test binary a child that deletes a user and then
// waits to be killed, its scrub still pending.
const crashChildEnv = "KIOSK_MODELS_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

// crashChild opens the store at path with a scrub delay longer than its
// life, creates and deletes a user with one encoding, prints "deleted" and
// the descriptor's first float bits, then sleeps until killed.
func crashChild(path string) int {
	ctx := context.Background()
	db := bolt.NewDB(path)
	db.ScrubDelay = time.Hour
	if err := db.Open(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	u := &models.User{FullName: "Crash Victim", Email: "victim@example.org", Role: models.RoleTrainee}
	if err := db.CreateUser(ctx, u); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	d := bolttest.RandomDescriptor(rand.New(rand.NewPCG(7, 7)))
	if err := db.AddEncoding(ctx, &models.FaceEncoding{UserID: u.ID, Descriptor: d}); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := db.DeleteUser(ctx, u.ID); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("deleted")
	time.Sleep(time.Hour)
	return 0
}

// TestStoreKilledAfterDelete kills (-9) a process that has just deleted a
// user, before its scrub, and reopens the file: the scrub runs at Open and
// Open must not touch the handle that scrub closed (it used to panic with
// "database file isn't correctly mapped").
func TestStoreKilledAfterDelete(t *testing.T) {
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "kioskd.db")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if strings.TrimSpace(line) != "deleted" {
			t.Fatalf("round %d: child said %q", round, line)
		}

		db := bolt.NewDB(path)
		if err := db.Open(); err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if err := db.Check(); err != nil {
			t.Fatalf("round %d: check: %v", round, err)
		}
		if n, err := db.CountUsers(context.Background()); err != nil || n != 0 {
			t.Fatalf("round %d: %d users after the deletion (%v)", round, n, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		d := bolttest.RandomDescriptor(rand.New(rand.NewPCG(7, 7)))
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), string(bolt.DescriptorBytesForTest(&d)[:64])) || strings.Contains(string(raw), "Crash Victim") {
			t.Fatalf("round %d: the deleted user is still in the file after the scrub at open", round)
		}
	}
}
