package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"google.golang.org/grpc/metadata"
)

func init() {
	register("watchers", watchers)
	register("idleWatchers", idleWatchers)
	register("delivery", delivery)
}

// openWatch starts a watch and waits for the server to confirm it; events go
// to onEvents, a cancellation or stream error to errs.
func openWatch(ctx context.Context, c *clientv3.Client, key string, errs *errorCounts,
	onEvents func([]*clientv3.Event), opts ...clientv3.OpOption) error {
	ch := c.Watch(ctx, key, append(opts, clientv3.WithCreatedNotify())...)
	first, ok := <-ch
	if !ok {
		return fmt.Errorf("watch on %s closed before it was created", key)
	}
	if err := first.Err(); err != nil {
		return fmt.Errorf("watch refused: %s", errorText(err))
	}
	go func() {
		for res := range ch {
			if res.Canceled {
				if ctx.Err() == nil {
					errs.add("watch canceled: " + errorText(res.Err()))
				}
				continue
			}
			if len(res.Events) > 0 {
				onEvents(res.Events)
			}
		}
	}()
	return nil
}

type watchersParams struct {
	Target string `json:"target"`
	Prefix string `json:"prefix"`
	Count  int    `json:"count"`
}

type watcherSeen struct {
	mu            sync.Mutex
	seen          map[int64]bool
	maxRevision   int64
	events        int
	duplicates    int
	missingPrevKv int
}

// watchers opens Count prefix watchers (with prev_kv), each on its own
// connection, that record every event's revision. The stop message names the
// last acknowledged revision; they wait (15 s at most) until they have seen it
// and report what they saw.
func watchers(p *watchersParams, ctl control) (interface{}, error) {
	s, err := open(p.Target, p.Count)
	if err != nil {
		return nil, err
	}
	defer s.close()
	errs := s.errs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws := make([]*watcherSeen, p.Count)
	for i := range ws {
		w := &watcherSeen{seen: map[int64]bool{}}
		ws[i] = w
		err := openWatch(ctx, s.conn(i), p.Prefix, errs, func(events []*clientv3.Event) {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, e := range events {
				rev := e.Kv.ModRevision
				w.events++
				if w.seen[rev] {
					w.duplicates++
				}
				w.seen[rev] = true
				if rev > w.maxRevision {
					w.maxRevision = rev
				}
				needsPrev := e.Type == clientv3.EventTypeDelete || e.Kv.Version > 1
				if needsPrev && (e.PrevKv == nil || len(e.PrevKv.Key) == 0) {
					w.missingPrevKv++
				}
			}
		}, clientv3.WithPrefix(), clientv3.WithPrevKV())
		if err != nil {
			return nil, err
		}
	}
	ctl.ready(nil)
	var stop struct {
		UntilRevision int64 `json:"untilRevision"`
	}
	json.Unmarshal(<-ctl.stopped, &stop)
	caughtUp := func() bool {
		for _, w := range ws {
			w.mu.Lock()
			behind := w.maxRevision < stop.UntilRevision
			w.mu.Unlock()
			if behind {
				return false
			}
		}
		return true
	}
	for giveUp := time.Now().Add(15 * time.Second); !caughtUp() && time.Now().Before(giveUp); {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	out := []map[string]interface{}{}
	for _, w := range ws {
		w.mu.Lock()
		revs := make([]int64, 0, len(w.seen))
		for r := range w.seen {
			revs = append(revs, r)
		}
		out = append(out, map[string]interface{}{
			"revisions": revs, "events": w.events, "duplicates": w.duplicates,
			"missingPrevKv": w.missingPrevKv,
		})
		w.mu.Unlock()
	}
	return map[string]interface{}{"watchers": out, "errors": errs}, nil
}

type idleParams struct {
	Target    string `json:"target"`
	Conns     int    `json:"conns"`
	Streams   int    `json:"streams"`
	PerStream int    `json:"perStream"`
}

// idleWatchers opens Streams watch streams over Conns connections with
// PerStream single-key watches each, on keys nobody writes; any event or
// cancellation is reported.
func idleWatchers(p *idleParams, ctl control) (interface{}, error) {
	s, err := open(p.Target, p.Conns)
	if err != nil {
		return nil, err
	}
	defer s.close()
	errs := s.errs
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events int64
	for st := 0; st < p.Streams; st++ {
		// clientv3 puts watches with the same outgoing metadata on one stream.
		sctx := metadata.AppendToOutgoingContext(ctx, "bench-stream", strconv.Itoa(st))
		for i := 0; i < p.PerStream; i++ {
			key := fmt.Sprintf("/idle/s%d/k%d", st, i)
			err := openWatch(sctx, s.conn(st), key, errs, func(e []*clientv3.Event) {
				atomic.AddInt64(&events, int64(len(e)))
			})
			if err != nil {
				return nil, err
			}
		}
	}
	ctl.ready(map[string]int{"watches": p.Streams * p.PerStream})
	<-ctl.stopped
	cancel()
	return map[string]interface{}{"events": atomic.LoadInt64(&events), "errors": errs}, nil
}

type deliveryParams struct {
	// Targets are the servers written to and watched: one, or several
	// processes serving one store.
	Targets []string `json:"targets"`
	// Rate is puts/s in total, paced; 0 means Concurrency closed loops.
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	DurationMs  int     `json:"durationMs"`
	ValueSize   int     `json:"valueSize"`
	Prefix      string  `json:"prefix"`
	// CrossOnly times only events received through another target than the
	// one the put went to (write acknowledged on A → event on B).
	CrossOnly bool `json:"crossOnly"`
}

type pendingPut struct {
	sent, acked time.Time
	target      int
	remaining   int
}

// delivery writes fresh keys under Prefix through Targets in turn while one
// watcher per target watches the prefix, and times each event from the put's
// response (0 when the event comes first) and from sending the put. Every
// watcher must see every put once.
func delivery(p *deliveryParams, _ control) (interface{}, error) {
	n := len(p.Targets)
	writers := make([]*clientv3.Client, 0, n)
	watchConns := make([]*clientv3.Client, 0, n)
	defer func() { closeAll(writers); closeAll(watchConns) }()
	for _, t := range p.Targets {
		w, err := dial(t)
		if err != nil {
			return nil, err
		}
		writers = append(writers, w)
		c, err := dial(t)
		if err != nil {
			return nil, err
		}
		watchConns = append(watchConns, c)
	}
	errs := newErrors()
	h := newHistograms()
	deliv, deliverySent := newHistogram(), newHistogram()
	var mu sync.Mutex
	pending := map[string]*pendingPut{}
	var duplicates, eventsBeforeAck, writes int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for wi := range watchConns {
		watcher := wi
		err := openWatch(ctx, watchConns[wi], p.Prefix, errs, func(events []*clientv3.Event) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			for _, e := range events {
				w, ok := pending[string(e.Kv.Key)]
				if !ok {
					duplicates++
					continue
				}
				if !p.CrossOnly || w.target != watcher {
					deliverySent.add(float64(now.Sub(w.sent).Nanoseconds()) / 1e6)
					if w.acked.IsZero() {
						eventsBeforeAck++
						deliv.add(0)
					} else {
						deliv.add(float64(now.Sub(w.acked).Nanoseconds()) / 1e6)
					}
				}
				// A watcher sees a key once: mark it by counting down.
				w.remaining--
				if w.remaining == 0 {
					delete(pending, string(e.Kv.Key))
				}
			}
		}, clientv3.WithPrefix())
		if err != nil {
			return nil, err
		}
	}
	v := value(p.ValueSize, 'h')
	var seq int64
	put := func() {
		i := atomic.AddInt64(&seq, 1) - 1
		target := int(i) % n
		key := fmt.Sprintf("%sk%d", p.Prefix, i)
		w := &pendingPut{sent: time.Now(), target: target, remaining: n}
		mu.Lock()
		pending[key] = w
		mu.Unlock()
		err := call(func(ctx context.Context) error {
			_, err := writers[target].Put(ctx, key, v)
			return err
		})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			delete(pending, key)
			errs.addErr(err)
			return
		}
		w.acked = time.Now()
		h.get("put").add(float64(w.acked.Sub(w.sent).Nanoseconds()) / 1e6)
		writes++
	}
	duration := time.Duration(p.DurationMs) * time.Millisecond
	writing := time.Now()
	if p.Rate > 0 {
		interval := time.Duration(float64(time.Second) / p.Rate)
		start := time.Now()
		var wg sync.WaitGroup
		for k := 0; time.Duration(k)*interval < duration; k++ {
			if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			wg.Add(1)
			go func() { defer wg.Done(); put() }()
		}
		wg.Wait()
	} else {
		running := deadline(duration)
		parallel(p.Concurrency, func(int) {
			for running() {
				put()
			}
		})
	}
	writeMs := msSince(writing)
	for giveUp := time.Now().Add(5 * time.Second); time.Now().Before(giveUp); {
		mu.Lock()
		left := len(pending)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	mu.Lock()
	defer mu.Unlock()
	var missed int64
	for _, w := range pending {
		missed += int64(w.remaining)
	}
	return map[string]interface{}{
		"writes": writes, "writeMs": writeMs, "hist": h, "delivery": deliv, "deliverySent": deliverySent,
		"missedEvents": missed, "duplicates": duplicates, "eventsBeforeAck": eventsBeforeAck,
		"errors": errs,
	}, nil
}
