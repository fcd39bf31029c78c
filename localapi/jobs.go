package localapi

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kioskd/kioskd/models"
)

// importDirPrefix names an import's temp folder after this process, so a
// later start can tell the folders of a killed kioskd from a live one's.
func importDirPrefix() string { return fmt.Sprintf("kioskd-import-%d-", os.Getpid()) }

// removeStaleImportDirs deletes the import folders in dir left by kioskd
// processes that no longer run (killed during an import: they hold the
// uploaded photos), and returns how many it removed.
func removeStaleImportDirs(dir string, logger *slog.Logger) int {
	if dir == "" {
		dir = os.TempDir()
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), "kioskd-import-")
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err == nil && pid > 0 && processAlive(pid) {
			continue
		}
		// Folders without a pid predate it: no live kioskd makes them.
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			logger.Warn("stale import folder cannot be removed", slog.String("dir", e.Name()), slog.Any("err", err))
			continue
		}
		n++
	}
	return n
}

// processAlive reports whether a process with pid exists (EPERM: it exists
// under another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// jobRegistry keeps import jobs in memory: at most max, finished ones dropped
// oldest first; each job owns a temp folder removed with it.
type jobRegistry struct {
	max int
	wg  sync.WaitGroup

	mu      sync.Mutex
	jobs    map[string]*importJob
	claimed bool // an upload holds the import slot (claim)
}

func newJobRegistry(maxJobs int) *jobRegistry {
	return &jobRegistry{max: max(1, maxJobs), jobs: map[string]*importJob{}}
}

func (r *jobRegistry) get(id string) *importJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs[id]
}

// claim reserves the one import slot for an upload, checking and taking it
// in one step: ECONFLICT while another upload is received or a job runs.
// add or unclaim ends the claim.
func (r *jobRegistry) claim() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claimed {
		return models.Errorf(models.ECONFLICT, "Another import is being uploaded; wait for it to start, then for it to finish.")
	}
	for _, j := range r.jobs {
		if !j.finished() {
			return models.Errorf(models.ECONFLICT, "Import %s is still running; wait for it to finish.", j.ID).WithDetail("job_id", j.ID)
		}
	}
	r.claimed = true
	return nil
}

// unclaim gives the slot back after a refused upload.
func (r *jobRegistry) unclaim() {
	r.mu.Lock()
	r.claimed = false
	r.mu.Unlock()
}

// add registers j, ending the claim, and drops the oldest finished jobs
// past max.
func (r *jobRegistry) add(j *importJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.claimed = false
	r.jobs[j.ID] = j
	if len(r.jobs) <= r.max {
		return
	}
	var done []*importJob
	for _, x := range r.jobs {
		if x.finished() {
			done = append(done, x)
		}
	}
	sort.Slice(done, func(a, b int) bool { return done[a].created.Before(done[b].created) })
	for _, x := range done {
		if len(r.jobs) <= r.max {
			break
		}
		delete(r.jobs, x.ID)
		os.RemoveAll(x.dir)
	}
}

// sweep drops finished jobs older than age.
func (r *jobRegistry) sweep(now time.Time, age time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, j := range r.jobs {
		if j.finished() && now.Sub(j.created) > age {
			delete(r.jobs, id)
			os.RemoveAll(j.dir)
		}
	}
}

func (r *jobRegistry) wait() { r.wg.Wait() }

// removeAll deletes every job's files (Close, after wait).
func (r *jobRegistry) removeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, j := range r.jobs {
		os.RemoveAll(j.dir)
		delete(r.jobs, id)
	}
}
