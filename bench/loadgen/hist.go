package main

import (
	"math"
	"sync"
	"time"
)

// perOctave buckets per power of two: about 2% resolution. The bucket index
// is floor(log2(µs) * perOctave), as bench/stats.ts reads it.
const perOctave = 32

// histogram is a log-bucketed histogram of durations in milliseconds, safe
// for concurrent use; it marshals to bench/stats.ts's HistogramData.
type histogram struct {
	mu      sync.Mutex
	Buckets map[int]int `json:"buckets"`
	Count   int         `json:"count"`
	Max     float64     `json:"max"`
	Min     float64     `json:"min"`
}

func newHistogram() *histogram { return &histogram{Buckets: map[int]int{}} }

// add records one duration in milliseconds.
func (h *histogram) add(ms float64) {
	us := math.Max(1, ms*1000)
	i := int(math.Floor(math.Log2(us) * perOctave))
	h.mu.Lock()
	h.Buckets[i]++
	if h.Count == 0 || ms < h.Min {
		h.Min = ms
	}
	if ms > h.Max {
		h.Max = ms
	}
	h.Count++
	h.mu.Unlock()
}

// since records the time elapsed since t0.
func (h *histogram) since(t0 time.Time) { h.add(msSince(t0)) }

func msSince(t0 time.Time) float64 { return float64(time.Since(t0).Nanoseconds()) / 1e6 }

// histograms are named histograms, one per operation type, kept in the
// order of first use (the table lists operations in that order).
type histograms struct {
	mu    sync.Mutex
	byOp  map[string]*histogram
	order []string
}

func newHistograms() *histograms { return &histograms{byOp: map[string]*histogram{}} }

func (h *histograms) get(op string) *histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	x, ok := h.byOp[op]
	if !ok {
		x = newHistogram()
		h.byOp[op] = x
		h.order = append(h.order, op)
	}
	return x
}

// time runs fn and records its duration under op.
func (h *histograms) time(op string, fn func() error) error {
	t0 := time.Now()
	err := fn()
	if err == nil {
		h.get(op).since(t0)
	}
	return err
}

// MarshalJSON writes one member per operation, in order of first use.
func (h *histograms) MarshalJSON() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	buf := []byte{'{'}
	for i, op := range h.order {
		if i > 0 {
			buf = append(buf, ',')
		}
		name, _ := marshal(op)
		body, err := marshal(h.byOp[op])
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, name...), ':'), body...)
	}
	return append(buf, '}'), nil
}
