package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func init() {
	register("progress", progress)
}

type progressParams struct {
	Target     string  `json:"target"`
	Prefix     string  `json:"prefix"`
	Rate       float64 `json:"rate"`
	DurationMs int     `json:"durationMs"`
	EveryMs    int     `json:"everyMs"`
	ValueSize  int     `json:"valueSize"`
}

// progress is how the apiserver serves a consistent list from its cache: a
// WatchProgressRequest every EveryMs on a watch stream over Prefix while puts
// go on at Rate. It times each answer, and counts answers that came before
// the event of a put they cover (acknowledged at or below their revision).
func progress(p *progressParams, _ control) (interface{}, error) {
	writer, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer writer.Close()
	watcher, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer watcher.Close()
	errs := newErrors()
	h := newHistograms()
	var mu sync.Mutex
	var asked []time.Time
	unseen := map[int64]bool{}
	seen := map[int64]bool{}
	var answered, early, writes int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := watcher.Watch(ctx, p.Prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if first, ok := <-ch; !ok || first.Err() != nil {
		return nil, fmt.Errorf("watch refused")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for res := range ch {
			mu.Lock()
			for _, e := range res.Events {
				if !unseen[e.Kv.ModRevision] {
					seen[e.Kv.ModRevision] = true
				}
				delete(unseen, e.Kv.ModRevision)
			}
			if res.IsProgressNotify() && len(asked) > 0 {
				h.get("progress answer").since(asked[0])
				asked = asked[1:]
				if res.Header.Revision > answered {
					answered = res.Header.Revision
				}
				for rev := range unseen {
					if rev <= answered {
						early++
						delete(unseen, rev)
					}
				}
			}
			mu.Unlock()
		}
	}()
	stopAsking := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Duration(p.EveryMs) * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopAsking:
				return
			case <-tick.C:
				mu.Lock()
				asked = append(asked, time.Now())
				mu.Unlock()
				if err := watcher.RequestProgress(ctx); err != nil {
					errs.addErr(err)
				}
			}
		}
	}()
	v := value(p.ValueSize, 'p')
	interval := time.Duration(float64(time.Second) / p.Rate)
	duration := time.Duration(p.DurationMs) * time.Millisecond
	start := time.Now()
	var wg sync.WaitGroup
	for k := 0; time.Duration(k)*interval < duration; k++ {
		if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			t0 := time.Now()
			var rev int64
			err := call(func(ctx context.Context) error {
				res, err := writer.Put(ctx, fmt.Sprintf("%sk%d", p.Prefix, k%1000), v)
				if err == nil {
					rev = res.Header.Revision
				}
				return err
			})
			if err != nil {
				errs.addErr(err)
				return
			}
			h.get("put").since(t0)
			mu.Lock()
			defer mu.Unlock()
			writes++
			switch {
			case seen[rev]:
				delete(seen, rev)
			case rev <= answered:
				early++
			default:
				unseen[rev] = true
			}
		}(k)
	}
	wg.Wait()
	writeMs := msSince(start)
	close(stopAsking)
	for giveUp := time.Now().Add(5 * time.Second); time.Now().Before(giveUp); {
		mu.Lock()
		left := len(asked)
		mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(asked) > 0 {
		errs.add(fmt.Sprintf("%d progress requests never answered", len(asked)))
	}
	if early > 0 {
		errs.add(fmt.Sprintf("%d progress answers came before an event they cover", early))
	}
	return map[string]interface{}{"writes": writes, "writeMs": writeMs, "hist": h, "errors": errs}, nil
}
