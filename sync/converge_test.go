package sync_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kioskd/kioskd/models"
	"github.com/kioskd/kioskd/sync/synctest"
)

// 5,000 upserts and deletes of 300 users, sent in random order with
// duplicates (in messages of 1-20 records whose sequence numbers arrive
// permuted too): the store converges to the registry's state by versions
// alone, without a snapshot.
func TestConvergeRandomPermutations(t *testing.T) {
	b := synctest.MustMosquitto(t)
	reg := mustRegistry(t, b.URL, nil)
	cfg := testConfig(b.URL, "kiosk-converge")
	cfg.GapGrace = 10 * time.Minute // prove convergence without snapshots
	k := mustKiosk(t, cfg, nil)
	waitConnected(t, k)
	waitFor(t, 15*time.Second, "initial snapshot", func() bool { return k.client.Status().Counters.Snapshots == 1 })

	rng := rand.New(rand.NewPCG(4, 2))
	const users, ops = 300, 5000
	version := map[string]int64{}
	var all []models.UserRecord
	for i := 0; i < ops; i++ {
		id := fmt.Sprintf("u%03d", rng.IntN(users))
		version[id]++
		if rng.IntN(10) < 3 {
			all = append(all, models.UserRecord{User: models.User{ID: id, Version: version[id]}, Deleted: true})
		} else {
			all = append(all, randomUser(id, version[id], 1+rng.IntN(2), i))
		}
	}
	reg.Set(all...)
	type msg struct {
		seq  uint64
		recs []models.UserRecord
	}
	var msgs []msg
	for i := 0; i < len(all); {
		n := min(1+rng.IntN(20), len(all)-i)
		msgs = append(msgs, msg{seq: uint64(len(msgs) + 1), recs: all[i : i+n]})
		i += n
	}
	reg.SetSeq(uint64(len(msgs)))
	order := rng.Perm(len(msgs))
	for i := 0; i < len(msgs)/5; i++ { // 20% duplicates
		order = append(order, rng.IntN(len(msgs)))
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	ctx := context.Background()
	for _, i := range order {
		if err := reg.PublishUsers(ctx, msgs[i].seq, msgs[i].recs); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.PublishHead(ctx); err != nil {
		t.Fatal(err)
	}
	want := registryState(reg)
	waitFor(t, 120*time.Second, "sequence caught up", func() bool { return k.client.Status().SiteSeq == uint64(len(msgs)) })
	if d := diffStates(storeState(t, k.db), want); d != "[]" {
		t.Fatalf("store differs from the registry: %s", d)
	}
	st := k.client.Status()
	if st.Counters.Snapshots != 1 {
		t.Fatalf("%d snapshots; convergence should need none after the initial one", st.Counters.Snapshots)
	}
	// The matcher holds exactly the live users' encodings.
	n := 0
	for _, r := range reg.Live() {
		n += len(r.Encodings)
	}
	if k.matcher.Len() != n {
		t.Fatalf("matcher holds %d descriptors, want %d", k.matcher.Len(), n)
	}
	t.Logf("%d messages (%d with duplicates), %d live users; applied %d records, ignored %d",
		len(msgs), len(order), len(want), st.Counters.UsersApplied, st.Counters.UsersIgnored)
}
