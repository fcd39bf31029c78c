package backoff

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for i, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		if want > time.Second {
			want = time.Second
		}
		for range 50 {
			if d := Delay(b.Min, b.Max, i); d < want/2 || d > want {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", i, d, want/2, want)
			}
		}
		if d := b.Next(); d < want/2 || d > want {
			t.Fatalf("Next %d: %v outside [%v, %v]", i, d, want/2, want)
		}
	}
	b.Reset()
	if d := b.Next(); d > 100*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
	for range 100 { // no overflow however long it fails
		b.Next()
	}
	if d := b.Next(); d < 500*time.Millisecond || d > time.Second {
		t.Fatalf("after many: %v", d)
	}
	if d := Delay(time.Nanosecond, time.Nanosecond, 0); d != time.Nanosecond {
		t.Fatalf("1ns: %v", d)
	}
}
