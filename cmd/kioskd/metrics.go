package main

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kioskd/kioskd/device"
	"github.com/kioskd/kioskd/models"
	ksync "github.com/kioskd/kioskd/sync"
)

// kioskMetrics exposes the pipeline, sync and outbox on /metrics. Counters
// and gauges are read from the components' status snapshots at scrape time;
// only gate outcomes and time to attendance, which no snapshot holds, are
// observed through the pipeline's hooks. Every label value is from a fixed set.
type kioskMetrics struct {
	pipeline func() *device.Pipeline
	sync     func() *ksync.Client
	outbox   outboxReader
	now      func() time.Time

	gate   *prometheus.CounterVec
	toAttn prometheus.Histogram
}

// outboxReader is what the metrics read of the store's outbox.
type outboxReader interface {
	OutboxLen(ctx context.Context) (int, error)
	PendingOutbox(ctx context.Context, afterSeq uint64, limit int) ([]*models.OutboxMessage, error)
}

var (
	descFrames    = prometheus.NewDesc("kioskd_camera_frames_total", "Frames read from the camera.", nil, nil)
	descProcessed = prometheus.NewDesc("kioskd_camera_frames_gated_total", "Frames the gates examined.", nil, nil)
	descIdle      = prometheus.NewDesc("kioskd_camera_frames_idle_total", "Frames not gated: nobody in view and nothing changed.", nil, nil)
	descDropped   = prometheus.NewDesc("kioskd_camera_frames_dropped_total", "Frames dropped because the pipeline was busy.", nil, nil)
	descReopens   = prometheus.NewDesc("kioskd_camera_reopens_total", "Times the camera was reopened after a failure.", nil, nil)
	descCamState  = prometheus.NewDesc("kioskd_camera_state", "1 for the camera's current state (starting, running, reconnecting, ended, stopped).", []string{"state"}, nil)
	descLastFrame = prometheus.NewDesc("kioskd_camera_last_frame_timestamp_seconds", "When the last frame arrived (unix seconds; 0 before the first).", nil, nil)
	descEncodes   = prometheus.NewDesc("kioskd_pipeline_encodings_total", "Face descriptors computed.", nil, nil)
	descDecisions = prometheus.NewDesc("kioskd_pipeline_decisions_total", "Tracks decided: attendance recorded, or face unknown.", []string{"outcome"}, nil)
	descLiveness  = prometheus.NewDesc("kioskd_pipeline_liveness_refusals_total", "Recognised faces refused for lack of liveness.", nil, nil)
	descBreaks    = prometheus.NewDesc("kioskd_pipeline_appearance_breaks_total", "Tracks ended because the face changed at once.", nil, nil)
	descFbDropped = prometheus.NewDesc("kioskd_pipeline_feedback_dropped_total", "Kiosk-screen messages lost by slow subscribers.", nil, nil)
	descOutboxLen = prometheus.NewDesc("kioskd_outbox_messages", "Messages waiting for central's acknowledgement.", nil, nil)
	descOutboxAge = prometheus.NewDesc("kioskd_outbox_oldest_age_seconds", "Age of the oldest waiting message (0 when none wait).", nil, nil)
	descConnected = prometheus.NewDesc("kioskd_sync_connected", "1 while connected to the broker.", nil, nil)
	descSyncState = prometheus.NewDesc("kioskd_sync_state", "1 for the state sync reports to central (online, degraded, offline).", []string{"state"}, nil)
	descInflight  = prometheus.NewDesc("kioskd_sync_inflight", "Outbox messages published and not yet acknowledged.", nil, nil)
	descPublished = prometheus.NewDesc("kioskd_sync_published_total", "Outbox publications, resends included.", nil, nil)
	descResent    = prometheus.NewDesc("kioskd_sync_resent_total", "Outbox resends.", nil, nil)
	descAcks      = prometheus.NewDesc("kioskd_sync_acks_total", "Outbox messages central acknowledged.", nil, nil)
	descConnects  = prometheus.NewDesc("kioskd_sync_connects_total", "Successful broker connections.", nil, nil)
	descLost      = prometheus.NewDesc("kioskd_sync_connections_lost_total", "Broker connections lost.", nil, nil)
	descRejected  = prometheus.NewDesc("kioskd_sync_rejected_total", "Messages from central refused, by reason.", []string{"reason"}, nil)
)

var (
	cameraStates  = []device.CameraState{device.CameraStarting, device.CameraRunning, device.CameraReconnecting, device.CameraBlack, device.CameraFrozen, device.CameraEnded, device.CameraStopped}
	syncStates    = []string{"online", "degraded", "offline"}
	rejectReasons = []string{ksync.RejectForged, ksync.RejectReplay, ksync.RejectExpired, ksync.RejectOtherDevice,
		ksync.RejectMalformed, ksync.RejectOversized, ksync.RejectNoKey}
	gateOutcomes = []models.FeedbackKind{models.FeedbackIdle, models.FeedbackOnePerson, models.FeedbackMoveCloser,
		models.FeedbackTooDark, models.FeedbackTooBright, models.FeedbackHoldStill, models.FeedbackLookAtCamera}
)

// newKioskMetrics returns the collector; pipeline and sync return nil when
// that part is not running.
func newKioskMetrics(pipeline func() *device.Pipeline, sync func() *ksync.Client, outbox outboxReader, now func() time.Time) *kioskMetrics {
	k := &kioskMetrics{pipeline: pipeline, sync: sync, outbox: outbox, now: now,
		gate: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kioskd_pipeline_gate_outcomes_total",
			Help: "Gated frames by outcome: passed, or what stopped the frame (idle, one_person_please, move_closer, too_dark, too_bright, hold_still, look_at_camera)."},
			[]string{"outcome"}),
		toAttn: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kioskd_pipeline_time_to_attendance_seconds",
			Help:    "From a track's first gated frame to its attendance being committed.",
			Buckets: []float64{.25, .5, .75, 1, 1.5, 2, 3, 5, 10, 30}}),
	}
	k.gate.WithLabelValues("passed")
	for _, o := range gateOutcomes {
		k.gate.WithLabelValues(string(o))
	}
	return k
}

// observeGate counts one gated frame; problem "" means it passed.
func (k *kioskMetrics) observeGate(problem models.FeedbackKind) {
	switch {
	case problem == "":
		k.gate.WithLabelValues("passed").Inc()
	case slices.Contains(gateOutcomes, problem):
		k.gate.WithLabelValues(string(problem)).Inc()
	default:
		k.gate.WithLabelValues("other").Inc()
	}
}

// observeRecord times one committed event from its track's first gated frame.
func (k *kioskMetrics) observeRecord(ev *models.AttendanceEvent, firstGated time.Time) {
	if !firstGated.IsZero() {
		k.toAttn.Observe(max(0, ev.Time.Sub(firstGated).Seconds()))
	}
}

// Describe sends the descriptions of every metric.
func (k *kioskMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descProcessed, descIdle, descDropped, descReopens, descCamState, descLastFrame,
		descEncodes, descDecisions, descLiveness, descBreaks, descFbDropped, descOutboxLen, descOutboxAge,
		descConnected, descSyncState, descInflight, descPublished, descResent, descAcks, descConnects, descLost, descRejected} {
		ch <- d
	}
	k.gate.Describe(ch)
	k.toAttn.Describe(ch)
}

// Collect reads the status snapshots and the outbox.
func (k *kioskMetrics) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if p := k.pipeline(); p != nil {
		s := p.Status()
		counter(descFrames, float64(s.Frames))
		counter(descProcessed, float64(s.Processed))
		counter(descIdle, float64(s.Idle))
		counter(descDropped, float64(s.Dropped))
		counter(descReopens, float64(s.Reopens))
		for _, st := range cameraStates {
			gauge(descCamState, b2f(s.State == st), string(st))
		}
		last := 0.0
		if !s.LastFrameAt.IsZero() {
			last = float64(s.LastFrameAt.UnixNano()) / 1e9
		}
		gauge(descLastFrame, last)
		counter(descEncodes, float64(s.Encodings))
		counter(descDecisions, float64(s.Events), "recorded")
		counter(descDecisions, float64(s.Unknown), "unknown")
		counter(descLiveness, float64(s.LivenessFailed))
		counter(descBreaks, float64(s.AppearanceBreaks))
		counter(descFbDropped, float64(s.FeedbackDropped))
		k.gate.Collect(ch)
		k.toAttn.Collect(ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := k.outbox.OutboxLen(ctx); err == nil {
		gauge(descOutboxLen, float64(n))
		age := 0.0
		if n > 0 {
			if msgs, err := k.outbox.PendingOutbox(ctx, 0, 1); err == nil && len(msgs) == 1 {
				age = max(0, k.now().Sub(msgs[0].CreatedAt).Seconds())
			}
		}
		gauge(descOutboxAge, age)
	}
	if c := k.sync(); c != nil {
		s := c.Status()
		gauge(descConnected, b2f(s.Connected))
		for _, st := range syncStates {
			gauge(descSyncState, b2f(s.State == st), st)
		}
		gauge(descInflight, float64(s.Inflight))
		counter(descPublished, float64(s.Counters.Published))
		counter(descResent, float64(s.Counters.Resent))
		counter(descAcks, float64(s.Counters.Acked))
		counter(descConnects, float64(s.Counters.Connects))
		counter(descLost, float64(s.Counters.ConnectionsLost))
		other := int64(0)
		for reason, n := range s.Rejected {
			if !slices.Contains(rejectReasons, reason) {
				other += n
			}
		}
		for _, r := range rejectReasons {
			counter(descRejected, float64(s.Rejected[r]), r)
		}
		counter(descRejected, float64(other), "other")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
