package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/kioskd/kioskd/localapi"
	"github.com/kioskd/kioskd/localapi/localapitest"
	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/models/bolt"
	"github.com/kioskd/kioskd/models/bolt/bolttest"
	"github.com/kioskd/kioskd/recognizer/recognizertest"
	"github.com/kioskd/kioskd/sync/registrysim"
	"github.com/kioskd/kioskd/sync/synctest"
)

// The crash campaign: kioskd runs as a child process (the test binary in
// child mode running Main: store, dlib models, sync over a real Mosquitto,
// API, jobs) while the parent enrols, deletes, uploads photos and imports
// sheets through the API and central pushes and deletes users; the child records
// attendance as the pipeline does. The parent kills it (-9) at a random
// moment, checks a copy of its data dir (opens, db.Check, nothing
// acknowledged lost, nothing deleted back, no deleted name in the raw file)
// and starts it again. `make crash` shares 1,000 rounds between parallel
// campaigns (scripts/crash.sh); the normal suite runs 20.

// Environment of the child.
const (
	crashChildEnv   = "KIOSK_CRASH_CHILD"   // data dir
	crashJournalEnv = "KIOSK_CRASH_JOURNAL" // file of attendance ids the store acknowledged
	crashBrokerEnv  = "KIOSK_CRASH_BROKER"
	crashPubKeyEnv  = "KIOSK_CRASH_PUBKEY"
)

// crashNamePrefix starts the name of every user the campaign creates
// through the API: "Crash Person 00042 Qz".
const crashNamePrefix = "Crash Person "

// crashChild runs kioskd on dir, prints "ready URL", then records
// attendance every 10 ms, appending each committed event's id to the
// journal (fsynced) before the next: what the store acknowledged.
func crashChild(dir string) int {
	m := NewMain()
	m.Getenv = func(string) string { return "" }
	m.Config.DataDir = dir
	m.Config.Models.Dir = os.Getenv("KIOSK_MODELS_DIR")
	m.Config.API.Addr = "127.0.0.1:0"
	m.Config.Recognizer.PoolSize = 1
	m.Config.DeviceID, m.Config.SiteID = "crash-1", "campus"
	m.Config.Sync.Broker = os.Getenv(crashBrokerEnv)
	m.Config.Sync.RegistryPublicKey = os.Getenv(crashPubKeyEnv)
	m.Config.Sync.OutboxPoll = 50 * time.Millisecond
	m.Config.Sync.MinBackoff = 100 * time.Millisecond
	m.Config.Sync.MaxBackoff = time.Second
	m.Config.Jobs.BackupCron, m.Config.Jobs.BackupKeep = "@every 1s", 3 // kills land in backups and prunes too
	m.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := m.Config.Validate(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if err := m.Run(context.Background()); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready", m.API.URL())
	j, err := os.OpenFile(os.Getenv(crashJournalEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	rec := notifyingRecorder{DB: m.DB, notify: m.Sync.Notify}
	for i := 0; ; i++ {
		ev := &models.AttendanceEvent{UserID: fmt.Sprintf("att-%02d", i%40), Time: time.Now().UTC(), KioskID: "crash-1", Distance: 0.4, Liveness: "off"}
		if err := rec.RecordAttendance(context.Background(), ev); err == nil {
			if _, err := j.WriteString(ev.ID + "\n"); err == nil {
				_ = j.Sync()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crashRig is the parent's side: broker, registry, the data dir and what
// was acknowledged.
type crashRig struct {
	t        *testing.T
	dataDir  string
	journal  string
	broker   string
	pub      ed25519.PublicKey
	reg      *registrysim.Registry
	photos   []string
	password string

	mu        gosync.Mutex
	live      map[string]string // API-created users acknowledged and not deleted: id -> name
	deleted   map[string]string // API deletions acknowledged: id -> name
	uncertain map[string]bool   // a create or delete whose answer the kill cut off
	central   []string          // ids of central users pushed and not deleted
	faceUser  string            // the one API user holding a face, "" when none
	ops       map[string]int    // acknowledged operations by kind
	// backupsChecked counts restored backups checked.
	backupsChecked int
	imported       int // users an import reported created
	nextUser       int
}

// crashChildProc is one running child.
type crashChildProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
}

// start runs a child and waits until it serves; kioskd must always start.
func (r *crashRig) start() (*crashChildProc, time.Duration) {
	r.t.Helper()
	begin := time.Now()
	c, line := r.spawn()
	if c.url == "" {
		r.t.Fatalf("kioskd did not start: %q\n%s", line, c.stderr.String())
	}
	return c, time.Since(begin)
}

// spawn runs a child and returns it once it printed its first line (its
// url is empty when that line is not "ready URL": the child has exited).
func (r *crashRig) spawn() (*crashChildProc, string) {
	r.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+r.dataDir, crashJournalEnv+"="+r.journal,
		crashBrokerEnv+"="+r.broker, crashPubKeyEnv+"="+base64.StdEncoding.EncodeToString(r.pub),
		"KIOSK_MODELS_DIR="+recognizertest.ModelsDir(r.t))
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, out)
	}()
	c := &crashChildProc{cmd: cmd, stderr: &stderr}
	select {
	case s := <-line:
		if url, ok := strings.CutPrefix(strings.TrimSpace(s), "ready "); ok {
			c.url = url
			return c, s
		}
		_ = cmd.Wait()
		return c, s
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		r.t.Fatalf("kioskd not ready after 90 s\n%s", stderr.String())
	}
	return nil, ""
}

// kill stops a child with SIGKILL.
func (c *crashChildProc) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// lockedWriter serializes writes from the child's stderr copier and reads
// in failure messages.
type lockedWriter struct {
	mu gosync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// do sends one API request; err is a transport error (the kill).
func crashDo(method, url, token, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// work runs random operations against the child until stop closes.
func (r *crashRig) work(c *crashChildProc, token string, rng *mrand.Rand, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		switch p := rng.IntN(100); {
		case p < 33:
			r.createUser(c, token)
		case p < 58:
			r.deleteUser(c, token, rng)
		case p < 66:
			r.uploadFace(c, token, rng)
		case p < 70:
			r.importSheet(c, token)
		case p < 88:
			r.pushCentral(rng)
		default:
			r.deleteCentral(rng)
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
	}
}

func (r *crashRig) createUser(c *crashChildProc, token string) {
	r.mu.Lock()
	r.nextUser++
	n := r.nextUser
	r.mu.Unlock()
	name := fmt.Sprintf(crashNamePrefix+"%05d Qz", n)
	body, _ := json.Marshal(map[string]string{"full_name": name, "email": fmt.Sprintf("crash%05d@example.org", n), "role": "trainee"})
	var u models.User
	code, err := crashDo("POST", c.url+"/api/v1/users", token, "application/json", bytes.NewReader(body), &u)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil && code == http.StatusCreated:
		r.live[u.ID] = name
		r.ops["create"]++
	case err != nil || code >= 500:
		r.uncertain["name:"+name] = true // may or may not exist: not checked
	default:
		r.t.Errorf("create user: %d", code)
	}
}

func (r *crashRig) pickLive(rng *mrand.Rand) (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.live))
	for id := range r.live {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "", ""
	}
	sort.Strings(ids)
	id := ids[rng.IntN(len(ids))]
	return id, r.live[id]
}

func (r *crashRig) deleteUser(c *crashChildProc, token string, rng *mrand.Rand) {
	id, name := r.pickLive(rng)
	r.mu.Lock()
	if r.faceUser != "" && rng.IntN(2) == 0 { // faces go too, often
		id, name = r.faceUser, r.live[r.faceUser]
	}
	r.mu.Unlock()
	if id == "" {
		return
	}
	code, err := crashDo("DELETE", c.url+"/api/v1/users/"+id, token, "", nil, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil && code == http.StatusNoContent:
		delete(r.live, id)
		r.deleted[id] = name
		if r.faceUser == id {
			r.faceUser = ""
		}
		r.ops["delete"]++
	case err != nil || code >= 500:
		delete(r.live, id)
		r.uncertain[id] = true
		if r.faceUser == id {
			r.faceUser = ""
		}
	default:
		r.t.Errorf("delete user %s: %d", id, code)
	}
}

// uploadFace enrols a photo for one API user at a time (so no duplicate
// refusals); the next deletion usually takes it away again.
func (r *crashRig) uploadFace(c *crashChildProc, token string, rng *mrand.Rand) {
	r.mu.Lock()
	busy := r.faceUser != ""
	r.mu.Unlock()
	if busy {
		return
	}
	id, _ := r.pickLive(rng)
	if id == "" {
		return
	}
	photo := r.photos[rng.IntN(len(r.photos))]
	img, err := os.ReadFile(photo)
	if err != nil {
		r.t.Error(err)
		return
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", filepath.Base(photo))
	_, _ = fw.Write(img)
	_ = mw.Close()
	code, err := crashDo("POST", c.url+"/api/v1/users/"+id+"/faces", token, mw.FormDataContentType(), &body, nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && code == http.StatusCreated {
		r.faceUser = id
		r.ops["face"]++
	}
}

// importSheet imports a one-row sheet with a photo through the API and
// follows the job for up to six seconds: a row it reports created is an
// acknowledged user (later deleted like the others, which frees its face
// for the next import).
func (r *crashRig) importSheet(c *crashChildProc, token string) {
	r.mu.Lock()
	r.nextUser++
	prefix := fmt.Sprintf("I%05d-", r.nextUser)
	r.mu.Unlock()
	dir, err := os.MkdirTemp("", "kioskd-crash-import-")
	if err != nil {
		r.t.Error(err)
		return
	}
	defer os.RemoveAll(dir)
	zipPath, sheet, _ := localapitest.MustBulkUpload(r.t, dir, 1, prefix)
	body, contentType := localapitest.ImportBody(sheet, zipPath)
	var job localapi.ImportJob
	code, err := crashDo("POST", c.url+"/api/v1/import", token, contentType, body, &job)
	if err != nil || code != http.StatusAccepted {
		return // killed, or another import still running (409)
	}
	for end := time.Now().Add(6 * time.Second); job.State != localapi.JobDone && job.State != localapi.JobFailed && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
		if _, err := crashDo("GET", c.url+"/api/v1/import/"+job.ID, token, "", nil, &job); err != nil {
			return
		}
	}
	r.mu.Lock()
	r.ops["import"]++
	r.mu.Unlock()
	if job.State != localapi.JobDone || job.Counts[localapi.RowCreated] != 1 {
		return // still running when killed, or a duplicate face
	}
	email := strings.ToLower(prefix) + "00000@example.com"
	var page struct {
		Items []models.User `json:"items"`
	}
	if code, err := crashDo("GET", c.url+"/api/v1/users?q="+email, token, "", nil, &page); err != nil || code != http.StatusOK {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, u := range page.Items {
		if u.Email == email {
			r.live[u.ID] = u.FullName
			r.imported++
		}
	}
}

func (r *crashRig) pushCentral(rng *mrand.Rand) {
	r.mu.Lock()
	r.nextUser++
	id := fmt.Sprintf("c-%05d", r.nextUser)
	r.mu.Unlock()
	rec := bolttest.NewUserRecord(rng, id, 0, 1)
	if err := r.reg.Push(context.Background(), []models.UserRecord{rec}, 0); err != nil {
		r.t.Errorf("central push: %v", err)
		return
	}
	r.mu.Lock()
	r.central = append(r.central, id)
	r.ops["central-push"]++
	r.mu.Unlock()
}

func (r *crashRig) deleteCentral(rng *mrand.Rand) {
	r.mu.Lock()
	if len(r.central) == 0 {
		r.mu.Unlock()
		return
	}
	i := rng.IntN(len(r.central))
	id := r.central[i]
	r.central = slices.Delete(r.central, i, i+1)
	r.ops["central-delete"]++
	r.mu.Unlock()
	if err := r.reg.Push(context.Background(), []models.UserRecord{{User: models.User{ID: id}, Deleted: true}}, 0); err != nil {
		r.t.Errorf("central delete: %v", err)
	}
}

// journalIDs returns the attendance ids the child acknowledged.
func (r *crashRig) journalIDs() []string {
	b, err := os.ReadFile(r.journal)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		r.t.Fatal(err)
	}
	var ids []string
	for _, l := range strings.Split(string(b), "\n") {
		if len(l) == 36 { // a torn last line is not an acknowledgement yet
			ids = append(ids, l)
		}
	}
	return ids
}

// copyData copies the data dir's database, key and backups to a fresh
// dir, so the check does not change what the next start finds (a pending
// scrub or prune).
func (r *crashRig) copyData() (dir, dbPath, keyPath, backups string) {
	r.t.Helper()
	dir, err := os.MkdirTemp("", "kioskd-crash-check-")
	if err != nil {
		r.t.Fatal(err)
	}
	dbPath, keyPath, backups = filepath.Join(dir, "kioskd.db"), filepath.Join(dir, "descriptors.key"), filepath.Join(dir, "backups")
	files := map[string]string{filepath.Join(r.dataDir, "kioskd.db"): dbPath, filepath.Join(r.dataDir, "keys", "descriptors.key"): keyPath}
	entries, _ := os.ReadDir(filepath.Join(r.dataDir, "backups"))
	for _, e := range entries {
		files[filepath.Join(r.dataDir, "backups", e.Name())] = filepath.Join(backups, e.Name())
	}
	if err := os.MkdirAll(backups, 0o700); err != nil {
		r.t.Fatal(err)
	}
	for src, dst := range files {
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(dst, backups) {
			continue // pruned by the child meanwhile
		} else if err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
	return dir, dbPath, keyPath, backups
}

// verifyBackups restores every backup left after Open and Close (which
// prune deletions from them): each opens, passes db.Check and holds no
// acknowledged deletion. It returns how many it checked.
func (r *crashRig) verifyBackups(round int, keyPath, dir string) int {
	r.t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			r.t.Fatalf("round %d: half-written backup %s survived an open", round, e.Name())
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			r.t.Fatal(err)
		}
		dbPath := filepath.Join(filepath.Dir(keyPath), "restored-"+e.Name())
		err = bolt.RestoreBackup(f, keyPath, dbPath)
		f.Close()
		if err != nil {
			r.t.Fatalf("round %d: backup %s does not restore: %v", round, e.Name(), err)
		}
		db := bolt.NewDB(dbPath)
		db.KeyPath = keyPath
		if err := db.Open(); err != nil {
			r.t.Fatalf("round %d: restored backup %s does not open: %v", round, e.Name(), err)
		}
		if err := db.Check(); err != nil {
			r.t.Fatalf("round %d: restored backup %s: %v", round, e.Name(), err)
		}
		for id, name := range r.deleted {
			if _, err := db.GetUser(context.Background(), id); models.ErrorCode(err) != models.ENOTFOUND {
				r.t.Fatalf("round %d: backup %s brings back deleted user %s (%s): %v", round, e.Name(), id, name, err)
			}
		}
		_ = db.Close()
		n++
	}
	return n
}

// verify opens a copy of the killed child's store and checks it: Open and
// db.Check pass, every acknowledged user and attendance event is there,
// every acknowledged deletion stays deleted and its name is gone from the
// raw file. It returns every user of the store.
func (r *crashRig) verify(round int) []*models.User {
	r.t.Helper()
	ctx := context.Background()
	dir, dbPath, keyPath, backups := r.copyData()
	defer os.RemoveAll(dir) // a thousand rounds of copies add up
	db := bolt.NewDB(dbPath)
	db.KeyPath, db.BackupDir = keyPath, backups
	if err := db.Open(); err != nil {
		r.t.Fatalf("round %d: store does not open after kill -9: %v", round, err)
	}
	if err := db.Check(); err != nil {
		r.t.Fatalf("round %d: db.Check after kill -9: %v", round, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, name := range r.live {
		if r.uncertain[id] {
			continue
		}
		if u, err := db.GetUser(ctx, id); err != nil || u.FullName != name {
			r.t.Fatalf("round %d: acknowledged user %s (%s) lost: %v", round, id, name, err)
		}
	}
	for id, name := range r.deleted {
		if _, err := db.GetUser(ctx, id); models.ErrorCode(err) != models.ENOTFOUND {
			r.t.Fatalf("round %d: deleted user %s (%s) came back: %v", round, id, name, err)
		}
	}
	have := map[string]bool{}
	if err := db.ForEachAttendance(ctx, models.AttendanceFilter{}, func(ev *models.AttendanceEvent) error {
		have[ev.ID] = true
		return nil
	}); err != nil {
		r.t.Fatal(err)
	}
	for _, id := range r.journalIDs() {
		if !have[id] {
			r.t.Fatalf("round %d: acknowledged attendance %s lost", round, id)
		}
	}
	if err := db.Close(); err != nil { // scrubs and prunes what the open left pending
		r.t.Fatal(err)
	}
	r.backupsChecked += r.verifyBackups(round, keyPath, backups)
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		r.t.Fatal(err)
	}
	// One pass over the file: every "Crash Person N" in it must be live.
	deletedNames := make(map[string]bool, len(r.deleted))
	for _, name := range r.deleted {
		deletedNames[name] = true
	}
	liveNames := 0
	for rest := raw; ; {
		i := bytes.Index(rest, []byte(crashNamePrefix))
		if i < 0 {
			break
		}
		rest = rest[i:]
		if end := len(crashNamePrefix) + 8; len(rest) >= end {
			if deletedNames[string(rest[:end])] {
				r.t.Fatalf("round %d: deleted user's name %q is in the raw file", round, rest[:end])
			}
			liveNames++
		}
		rest = rest[1:]
	}
	if len(r.live) > 0 && liveNames == 0 {
		r.t.Fatalf("round %d: no live user's name found in the raw file: the scan is not working", round)
	}
	db = bolt.NewDB(dbPath)
	db.KeyPath = keyPath
	if err := db.Open(); err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	users, err := allUsers(ctx, db)
	if err != nil {
		r.t.Fatal(err)
	}
	return users
}

// crashRounds is how many kills a run does: KIOSK_CRASH_ROUNDS (make crash
// sets 1000), else 20.
func crashRounds(t *testing.T) int {
	if s := os.Getenv("KIOSK_CRASH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("KIOSK_CRASH_ROUNDS=%q", s)
		}
		return n
	}
	return 20
}

// crashSeed picks the campaign's random stream: KIOSK_CRASH_SEED (make crash
// gives each parallel campaign its own), else 77.
func crashSeed(t *testing.T) uint64 {
	if s := os.Getenv("KIOSK_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("KIOSK_CRASH_SEED=%q", s)
		}
		return n
	}
	return 77
}

// newCrashRig starts the broker and the registry and creates the admin.
func newCrashRig(t *testing.T, dataDir string) *crashRig {
	broker := synctest.MustMosquitto(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	reg := registrysim.New(registrysim.Config{Broker: broker.URL, Site: "campus", PrivateKey: priv}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := reg.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	r := &crashRig{t: t, dataDir: dataDir, journal: filepath.Join(t.TempDir(), "attendance.journal"),
		broker: broker.URL, pub: pub, reg: reg, password: "crash-admin-pass-42",
		live: map[string]string{}, deleted: map[string]string{}, uncertain: map[string]bool{}, ops: map[string]int{}}
	for _, p := range []string{"people/obama/1.jpg", "people/biden/1.jpg", "people/lin_manuel_miranda/1.png"} {
		r.photos = append(r.photos, recognizertest.Testdata(t, p))
	}
	var out bytes.Buffer
	admin := MustMain(t, &out)
	admin.Config.DataDir = dataDir
	admin.Command, admin.Args = "admin", []string{"add", "--email", "crash@example.org", "--role", "admin"}
	admin.Stdin = strings.NewReader(r.password + "\n")
	if err := admin.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCrashCampaign kills kioskd (-9) at random moments while it works, and
// checks after every kill that it starts again and its store is whole.
func TestCrashCampaign(t *testing.T) {
	rounds := crashRounds(t)
	r := newCrashRig(t, t.TempDir())
	var starts []time.Duration
	for round := range rounds {
		c, took := r.start()
		starts = append(starts, took)
		token := MustLogin(t, c.url, "crash@example.org", r.password)
		stop := make(chan struct{})
		done := make(chan struct{})
		rng := mrand.New(mrand.NewPCG(uint64(round), crashSeed(t)))
		go func() {
			defer close(done)
			r.work(c, token, rng, stop)
		}()
		time.Sleep(time.Duration(50+rng.IntN(2500)) * time.Millisecond)
		c.kill()
		close(stop)
		<-done
		if t.Failed() {
			t.Fatalf("round %d failed; child's log:\n%s", round, c.stderr.String())
		}
		r.verify(round)
		if (round+1)%50 == 0 {
			t.Logf("%d rounds: acknowledged %v and %d attendance events, all checked", round+1, r.ops, len(r.journalIDs()))
		}
	}

	// Finally: it converges with central and delivers every acknowledged
	// event.
	c, took := r.start()
	starts = append(starts, took)
	defer c.kill()
	ids := r.journalIDs()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := r.reg.WaitFor(ctx, func() bool {
		for _, id := range ids {
			if _, ok := r.reg.Payload(id); !ok {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("central did not receive every acknowledged attendance event (%d): %v\n%s", len(ids), err, c.stderr.String())
	}
	wantCentral := map[string]bool{}
	for _, rec := range r.reg.Live() {
		wantCentral[rec.User.ID] = true
	}
	if err := r.reg.WaitFor(ctx, func() bool {
		_ = c.cmd.Process.Signal(syscall.SIGSTOP) // a consistent copy
		users := r.verify(rounds)
		_ = c.cmd.Process.Signal(syscall.SIGCONT)
		got := 0
		for _, u := range users {
			if strings.HasPrefix(u.ID, "c-") {
				if !wantCentral[u.ID] {
					return false
				}
				got++
			}
		}
		return got == len(wantCentral)
	}); err != nil {
		t.Fatalf("kiosk did not converge to central's users: %v", err)
	}
	slices.Sort(starts)
	t.Logf("crash campaign: %d kills; acknowledged %v (%d imported users) and %d attendance events; none lost, none deleted came back (store nor %d restored backups); start to ready median %s, max %s",
		rounds, r.ops, r.imported, len(ids), r.backupsChecked, starts[len(starts)/2].Round(time.Millisecond), starts[len(starts)-1].Round(time.Millisecond))
}

// allUsers lists every user, page by page.
func allUsers(ctx context.Context, db *bolt.DB) ([]*models.User, error) {
	var out []*models.User
	for {
		page, total, err := db.ListUsers(ctx, models.UserFilter{Offset: len(out), Limit: models.MaxPageSize})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) == 0 || len(out) >= total {
			return out, nil
		}
	}
}

// mustMount mounts a tmpfs of size at dir (kioskd's tests run as root on
// their CI and dev machines) and unmounts it at cleanup.
func mustMount(t *testing.T, dir, size string) {
	t.Helper()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs for the data dir (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// remount changes a mount's options (ro, rw).
func remount(t *testing.T, dir, opt string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opt, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opt, err, out)
	}
}

// waitAPI polls fn every 100 ms until it returns true or d passes.
func waitAPI(t *testing.T, d time.Duration, what string, fn func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !fn(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %s: %s", d, what)
		}
	}
}

// apiError is the API's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// tryCreate creates a user through the API and returns the status and the
// error message.
func tryCreate(t *testing.T, c *crashChildProc, token, name string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"full_name": name, "email": strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.org", "role": "trainee"})
	var out json.RawMessage
	code, err := crashDo("POST", c.url+"/api/v1/users", token, "application/json", bytes.NewReader(body), &out)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	var e apiError
	_ = json.Unmarshal(out, &e)
	return code, e.Error.Message
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, c *crashChildProc) (int, string) {
	t.Helper()
	resp, err := http.Get(c.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// assertFaultAndRecovery checks that while the fault lasts writes fail with
// an actionable message and /readyz says why, and that once clear() ends it
// kioskd writes again without a restart.
func assertFaultAndRecovery(t *testing.T, r *crashRig, c *crashChildProc, token, want string, clear func()) {
	var msg string
	waitAPI(t, 15*time.Second, "a write refused with "+want, func() bool {
		code, m := tryCreate(t, c, token, fmt.Sprintf("Fault Probe %d", time.Now().UnixNano()))
		msg = m
		return code == http.StatusServiceUnavailable && strings.Contains(m, want)
	})
	code, body := readyz(t, c)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Fatalf("/readyz during the fault: %d %s", code, body)
	}
	journal := len(r.journalIDs())
	t.Logf("during the fault: API %q; /readyz %d %s", msg, code, strings.TrimSpace(body))
	clear()
	waitAPI(t, 15*time.Second, "a write accepted after the fault", func() bool {
		code, _ := tryCreate(t, c, token, fmt.Sprintf("After Fault %d", time.Now().UnixNano()))
		return code == http.StatusCreated
	})
	waitAPI(t, 15*time.Second, "attendance recorded again", func() bool { return len(r.journalIDs()) > journal+10 })
	waitAPI(t, 5*time.Second, "/readyz 200 again", func() bool { code, _ := readyz(t, c); return code == http.StatusOK })
}

// startOnTmpfs starts kioskd with its data dir on a new tmpfs of size and
// returns once it records attendance.
func startOnTmpfs(t *testing.T, size string) (string, *crashRig, *crashChildProc) {
	mnt := t.TempDir()
	mustMount(t, mnt, size)
	r := newCrashRig(t, filepath.Join(mnt, "data"))
	c, _ := r.start()
	waitAPI(t, 15*time.Second, "attendance recorded", func() bool { return len(r.journalIDs()) > 10 })
	return mnt, r, c
}

// TestCrashDiskFull fills the data dir's disk (a small tmpfs) under a
// working kioskd: writes fail with a clear error and /readyz says why,
// nothing is corrupted, and it writes again by itself once space returns;
// killed afterwards, its store checks clean and it starts.
func TestCrashDiskFull(t *testing.T) {
	mnt, r, c := startOnTmpfs(t, "8m")
	defer c.kill()
	token := MustLogin(t, c.url, "crash@example.org", r.password)

	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	assertFaultAndRecovery(t, r, c, token, "no space left", func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
	c.kill()
	r.verify(0)
	c, _ = r.start()
	c.kill()
}

// TestCrashReadOnly starts kioskd on a data dir turned read-only after a
// kill (-9): a clear refusal naming the fix, no panic; made writable again,
// it starts, writes and its store checks clean. (Linux refuses to remount
// read-only while kioskd holds its files open for writing; a disk that the
// kernel turns read-only under it gives EROFS, which writes report like a
// full disk, see TestCrashDiskFull.)
func TestCrashReadOnly(t *testing.T) {
	mnt, r, c := startOnTmpfs(t, "64m")
	defer c.kill()
	c.kill()
	remount(t, mnt, "ro")
	c2, line := r.spawn()
	if c2.url != "" {
		c2.kill()
		t.Fatal("kioskd started on a read-only data dir")
	}
	if !strings.Contains(line, "read-only file system: remount it read-write") {
		t.Fatalf("start on a read-only data dir said %q\n%s", line, c2.stderr.String())
	}
	if strings.Contains(c2.stderr.String(), "panic") {
		t.Fatalf("start on a read-only data dir panicked:\n%s", c2.stderr.String())
	}
	t.Logf("start on a read-only data dir: %s", strings.TrimSpace(line))
	remount(t, mnt, "rw")
	r.verify(0)
	c, _ = r.start()
	token := MustLogin(t, c.url, "crash@example.org", r.password)
	if code, msg := tryCreate(t, c, token, "After Read Only"); code != http.StatusCreated {
		t.Fatalf("create after the data dir is writable again: %d %s", code, msg)
	}
	c.kill()
	r.verify(1)
}
