package localapi

import (
	"os"
	"sort"
	"sync"
	"time"
)

// jobRegistry keeps import jobs in memory: at most max, finished ones dropped
// oldest first; each job owns a temp folder removed with it.
type jobRegistry struct {
	max int
	wg  sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]*importJob
}

func newJobRegistry(maxJobs int) *jobRegistry {
	return &jobRegistry{max: max(1, maxJobs), jobs: map[string]*importJob{}}
}

func (r *jobRegistry) get(id string) *importJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs[id]
}

// running returns a job still at work, if any.
func (r *jobRegistry) running() *importJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		if !j.finished() {
			return j
		}
	}
	return nil
}

// add registers j, dropping the oldest finished jobs past max.
func (r *jobRegistry) add(j *importJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
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
