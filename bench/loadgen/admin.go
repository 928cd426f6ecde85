package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func init() {
	register("health", health)
	register("waitRange", waitRange)
	register("compact", compact)
	register("status", statusJob)
}

type healthParams struct {
	Target     string `json:"target"`
	IntervalMs int    `json:"intervalMs"`
}

// health calls grpc.health.v1 Check every IntervalMs on its own connection
// until stopped: under load its latency tracks how long the server takes to
// get to a trivial request.
func health(p *healthParams, ctl control) (interface{}, error) {
	c, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	hc := healthpb.NewHealthClient(c.ActiveConnection())
	check := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	check() // warm-up: the connection setup is not sampled
	latency := newHistogram()
	failures := 0
	interval := time.Duration(p.IntervalMs) * time.Millisecond
	ctl.ready(nil)
	next := time.Now()
	for {
		select {
		case <-ctl.stopped:
			return map[string]interface{}{"latency": latency, "failures": failures}, nil
		default:
		}
		t0 := time.Now()
		if err := check(); err != nil {
			failures++
		} else {
			latency.since(t0)
		}
		next = next.Add(interval)
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		} else {
			next = time.Now()
		}
	}
}

type waitParams struct {
	Target    string `json:"target"`
	TimeoutMs int    `json:"timeoutMs"`
}

// waitRange tries a Range of one key on a fresh connection every 10 ms until
// one succeeds (a server's cold start ends there).
func waitRange(p *waitParams, _ control) (interface{}, error) {
	giveUp := time.Now().Add(time.Duration(p.TimeoutMs) * time.Millisecond)
	last := "no attempt"
	for time.Now().Before(giveUp) {
		c, err := clientv3.New(clientv3.Config{
			Endpoints: []string{p.Target}, DialTimeout: time.Second,
			MaxCallRecvMsgSize: math.MaxInt32,
		})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = c.Get(ctx, "/")
			cancel()
			c.Close()
			if err == nil {
				return true, nil
			}
		}
		last = errorText(err)
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("no Range answered within %d ms (%s)", p.TimeoutMs, last)
}

type compactParams struct {
	Target          string `json:"target"`
	ProbeIntervalMs int    `json:"probeIntervalMs"`
	// MaxMs stops waiting for the compaction after this long; the result
	// says it did not finish (the server may go on with it).
	MaxMs int `json:"maxMs"`
}

// compact compacts the whole history (to the current revision, physically)
// while a probe on its own connection puts one key every ProbeIntervalMs: the
// longest probe put is the longest time writes were held up by compaction.
func compact(p *compactParams, _ control) (interface{}, error) {
	c, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	probe, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer probe.Close()
	var rev int64
	if err := call(func(ctx context.Context) error {
		res, err := c.Get(ctx, "/bench/compact-probe")
		if err == nil {
			rev = res.Header.Revision
		}
		return err
	}); err != nil {
		return nil, err
	}
	h := newHistograms()
	errs := newErrors()
	stalls := h.get("put during compaction")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Duration(p.ProbeIntervalMs) * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			// Timed whether it succeeds or not, and without the usual deadline:
			// the longest stall is the measurement.
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			_, err := probe.Put(ctx, "/bench/compact-probe", "x")
			cancel()
			stalls.since(t0)
			if err != nil {
				errs.addErr(err)
			}
		}
	}()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(p.MaxMs)*time.Millisecond)
	_, err = c.Compact(ctx, rev, clientv3.WithCompactPhysical())
	cancel()
	took := msSince(t0)
	close(done)
	wg.Wait()
	finished := err == nil
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("compact to %d: %s", rev, errorText(err))
	}
	if finished {
		h.get("compact").add(took)
	} else {
		// Not a compaction time: how long the bench waited for one that went on.
		h.get("compact, unfinished when the wait ended").add(took)
	}
	return map[string]interface{}{"revision": rev, "finished": finished, "hist": h, "errors": errs}, nil
}

type statusParams struct {
	Target string `json:"target"`
	Count  int    `json:"count"`
}

// statusJob times Count sequential Maintenance.Status calls.
func statusJob(p *statusParams, _ control) (interface{}, error) {
	c, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h := newHistograms()
	var dbSize int64
	for i := 0; i < p.Count; i++ {
		if err := h.time("status", func() error {
			return call(func(ctx context.Context) error {
				res, err := c.Status(ctx, p.Target)
				if err == nil {
					dbSize = res.DbSize
				}
				return err
			})
		}); err != nil {
			return nil, fmt.Errorf("status: %s", errorText(err))
		}
	}
	return map[string]interface{}{"hist": h, "dbSize": dbSize}, nil
}
