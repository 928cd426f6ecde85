package main

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/etcdserverpb"
)

func init() {
	register("preload", preload)
	register("kube", kube)
	register("puts", puts)
	register("updates", updates)
	register("listings", listings)
}

// preloadKey is the key of preloaded object i of a key set.
func preloadKey(set string, i, small int) string {
	switch set {
	case "kube":
		return fmt.Sprintf("/registry/configmaps/ns-%d/pre-%d", i%50, i)
	case "scale":
		return fmt.Sprintf("/registry/scale/ns-%d/obj-%07d", i%100, i)
	}
	if i < small {
		return fmt.Sprintf("/list/small/%07d", i)
	}
	return fmt.Sprintf("/list/rest/%07d", i)
}

type preloadParams struct {
	Target      string `json:"target"`
	Set         string `json:"set"`
	From        int    `json:"from"`
	To          int    `json:"to"`
	Small       int    `json:"small"`
	ValueSize   int    `json:"valueSize"`
	Batch       int    `json:"batch"`
	Concurrency int    `json:"concurrency"`
	// MaxMs stops handing out batches after this long (0: no limit); the
	// result's "loaded" says how far it got.
	MaxMs int `json:"maxMs"`
}

// preload writes keys From..To-1 in txns of Batch puts, Concurrency txns at
// a time; the keys written are always From..From+loaded-1.
func preload(p *preloadParams, _ control) (interface{}, error) {
	c, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h := newHistograms()
	v := value(p.ValueSize, 'a')
	op := fmt.Sprintf("txn (%d puts)", p.Batch)
	if p.Batch == 1 {
		op = "put"
	}
	var next int64 = int64(p.From)
	var revision int64
	var mu sync.Mutex
	var firstErr error
	running := func() bool { return true }
	if p.MaxMs > 0 {
		running = deadline(time.Duration(p.MaxMs) * time.Millisecond)
	}
	parallel(p.Concurrency, func(int) {
		for running() {
			start := int(atomic.AddInt64(&next, int64(p.Batch))) - p.Batch
			if start >= p.To {
				return
			}
			end := start + p.Batch
			if end > p.To {
				end = p.To
			}
			ops := make([]clientv3.Op, 0, end-start)
			for i := start; i < end; i++ {
				ops = append(ops, clientv3.OpPut(preloadKey(p.Set, i, p.Small), v))
			}
			var header *etcdserverpb.ResponseHeader
			err := h.time(op, func() error {
				return call(func(ctx context.Context) error {
					// A batch of one is a plain Put: for backends without multi-key txns.
					if len(ops) == 1 {
						res, err := c.Do(ctx, ops[0])
						if err == nil {
							header = res.Put().Header
						}
						return err
					}
					res, err := c.Txn(ctx).Then(ops...).Commit()
					if err == nil {
						header = res.Header
					}
					return err
				})
			})
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil && header.Revision > revision {
				revision = header.Revision
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	})
	if firstErr != nil {
		return nil, fmt.Errorf("preload: %s", errorText(firstErr))
	}
	// Batches are handed out in order and every one handed out was written.
	loaded := int(next) - p.From
	if loaded > p.To-p.From {
		loaded = p.To - p.From
	}
	return map[string]interface{}{"writes": loaded, "loaded": loaded, "revision": revision, "hist": h}, nil
}

type kubeParams struct {
	Target     string `json:"target"`
	Conns      int    `json:"conns"`
	Loops      int    `json:"loops"`
	DurationMs int    `json:"durationMs"`
	Namespaces int    `json:"namespaces"`
	ValueSize  int    `json:"valueSize"`
}

// kube runs kube-apiserver-like loops: create (MOD==0 → Put), update twice
// (MOD==rev → Put else Get), get, delete every third (MOD==rev → Delete else
// Get), and list a namespace (limit 500) every 20 writes.
func kube(p *kubeParams, _ control) (interface{}, error) {
	s, err := open(p.Target, p.Conns)
	if err != nil {
		return nil, err
	}
	defer s.close()
	h, errs := s.h, s.errs
	values := []string{value(p.ValueSize, 'a'), value(p.ValueSize, 'b'), value(p.ValueSize, 'c')}
	var mu sync.Mutex
	revisions := []int64{}
	var conflicts int64
	running := deadline(time.Duration(p.DurationMs) * time.Millisecond)
	parallel(p.Loops, func(l int) {
		c := s.conn(l)
		mine := []int64{}
		writes := 0
		for i := 0; running(); i++ {
			ns := (l + i) % p.Namespaces
			key := fmt.Sprintf("/registry/configmaps/ns-%d/bench-%d-%d", ns, l, i)
			modIs := func(rev int64) clientv3.Cmp {
				return clientv3.Compare(clientv3.ModRevision(key), "=", rev)
			}
			txn := func(name string, cmp clientv3.Cmp, then clientv3.Op, orElse ...clientv3.Op) (*clientv3.TxnResponse, error) {
				var res *clientv3.TxnResponse
				err := h.time(name, func() error {
					return call(func(ctx context.Context) (err error) {
						res, err = c.Txn(ctx).If(cmp).Then(then).Else(orElse...).Commit()
						return
					})
				})
				return res, err
			}
			err := func() error {
				created, err := txn("create", modIs(0), clientv3.OpPut(key, values[0]))
				if err != nil {
					return err
				}
				if !created.Succeeded {
					atomic.AddInt64(&conflicts, 1)
					return nil
				}
				rev := created.Header.Revision
				mine = append(mine, rev)
				writes++
				for _, v := range values[1:] {
					updated, err := txn("update", modIs(rev), clientv3.OpPut(key, v), clientv3.OpGet(key))
					if err != nil {
						return err
					}
					if !updated.Succeeded {
						atomic.AddInt64(&conflicts, 1)
						break
					}
					rev = updated.Header.Revision
					mine = append(mine, rev)
					writes++
				}
				if err := h.time("get", func() error {
					return call(func(ctx context.Context) error {
						_, err := c.Get(ctx, key)
						return err
					})
				}); err != nil {
					return err
				}
				if i%3 == 0 {
					deleted, err := txn("delete", modIs(rev), clientv3.OpDelete(key), clientv3.OpGet(key))
					if err != nil {
						return err
					}
					if deleted.Succeeded {
						mine = append(mine, deleted.Header.Revision)
						writes++
					} else {
						atomic.AddInt64(&conflicts, 1)
					}
				}
				if writes >= 20 {
					writes -= 20
					prefix := fmt.Sprintf("/registry/configmaps/ns-%d/", ns)
					return h.time("list", func() error {
						return call(func(ctx context.Context) error {
							_, err := c.Get(ctx, prefix, clientv3.WithRange(prefixEnd(prefix)), clientv3.WithLimit(500))
							return err
						})
					})
				}
				return nil
			}()
			if err != nil {
				errs.addErr(err)
				time.Sleep(10 * time.Millisecond)
			}
		}
		mu.Lock()
		revisions = append(revisions, mine...)
		mu.Unlock()
	})
	return map[string]interface{}{
		"writes": len(revisions), "revisions": revisions, "conflicts": conflicts,
		"hist": h, "errors": errs,
	}, nil
}

type putsParams struct {
	Target      string `json:"target"`
	Conns       int    `json:"conns"`
	Concurrency int    `json:"concurrency"`
	DurationMs  int    `json:"durationMs"`
	LeaseTTL    int64  `json:"leaseTTL"`
	ValueSize   int    `json:"valueSize"`
	Prefix      string `json:"prefix"`
}

// puts writes random keys from Concurrency loops over Conns connections,
// all with one lease when LeaseTTL is set.
func puts(p *putsParams, _ control) (interface{}, error) {
	s, err := open(p.Target, p.Conns)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var opts []clientv3.OpOption
	if p.LeaseTTL > 0 {
		var lease *clientv3.LeaseGrantResponse
		if err := call(func(ctx context.Context) (err error) {
			lease, err = s.conn(0).Grant(ctx, p.LeaseTTL)
			return
		}); err != nil {
			return nil, fmt.Errorf("lease grant: %s", errorText(err))
		}
		opts = append(opts, clientv3.WithLease(lease.ID))
	}
	h := newHistograms()
	errs := newErrors()
	v := value(p.ValueSize, 'a')
	var writes int64
	running := deadline(time.Duration(p.DurationMs) * time.Millisecond)
	parallel(p.Concurrency, func(l int) {
		c := s.conn(l)
		rnd := rand.New(rand.NewSource(time.Now().UnixNano() + int64(l)))
		for running() {
			key := fmt.Sprintf("%s%08x", p.Prefix, rnd.Uint32())
			err := h.time("put", func() error {
				return call(func(ctx context.Context) error {
					_, err := c.Put(ctx, key, v, opts...)
					return err
				})
			})
			if err != nil {
				errs.addErr(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			atomic.AddInt64(&writes, 1)
		}
	})
	return map[string]interface{}{"writes": writes, "hist": h, "errors": errs}, nil
}

type updatesParams struct {
	Target      string `json:"target"`
	Conns       int    `json:"conns"`
	Concurrency int    `json:"concurrency"`
	Set         string `json:"set"`
	From        int    `json:"from"`
	To          int    `json:"to"`
	ValueSize   int    `json:"valueSize"`
	MaxMs       int    `json:"maxMs"`
}

// updates overwrites each preloaded key From..To-1 once with a plain Put,
// from Concurrency callers, stopping after MaxMs if that is set.
func updates(p *updatesParams, _ control) (interface{}, error) {
	s, err := open(p.Target, p.Conns)
	if err != nil {
		return nil, err
	}
	defer s.close()
	h, errs := s.h, s.errs
	v := value(p.ValueSize, 'u')
	next := int64(p.From)
	var writes int64
	running := func() bool { return true }
	if p.MaxMs > 0 {
		running = deadline(time.Duration(p.MaxMs) * time.Millisecond)
	}
	parallel(p.Concurrency, func(l int) {
		c := s.conn(l)
		for running() {
			i := int(atomic.AddInt64(&next, 1)) - 1
			if i >= p.To {
				return
			}
			key := preloadKey(p.Set, i, 0)
			if err := h.time("update", func() error {
				return call(func(ctx context.Context) error {
					_, err := c.Put(ctx, key, v)
					return err
				})
			}); err != nil {
				errs.addErr(err)
				continue
			}
			atomic.AddInt64(&writes, 1)
		}
	})
	return map[string]interface{}{"writes": writes, "hist": h, "errors": errs}, nil
}

type listing struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
	Mode   string `json:"mode"`
	Expect int64  `json:"expect"`
}

type listingsParams struct {
	Target   string    `json:"target"`
	Reps     int       `json:"reps"`
	Listings []listing `json:"listings"`
}

// listings times whole listings of prefixes: paged (limit 500, pinned to the
// first page's revision), unpaged, or count-only; or the first page of 500 alone.
func listings(p *listingsParams, _ control) (interface{}, error) {
	c, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h := newHistograms()
	errs := newErrors()
	listOnce := func(l listing) (int64, error) {
		end := clientv3.WithRange(prefixEnd(l.Prefix))
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		switch l.Mode {
		case "count":
			res, err := c.Get(ctx, l.Prefix, end, clientv3.WithCountOnly())
			if err != nil {
				return 0, err
			}
			return res.Count, nil
		case "unpaged":
			res, err := c.Get(ctx, l.Prefix, end)
			if err != nil {
				return 0, err
			}
			return int64(len(res.Kvs)), nil
		case "stream":
			return rangeStream(ctx, c, l.Prefix, prefixEnd(l.Prefix))
		case "first":
			res, err := c.Get(ctx, l.Prefix, end, clientv3.WithLimit(500))
			if err != nil {
				return 0, err
			}
			return int64(len(res.Kvs)), nil
		}
		key := l.Prefix
		var revision, n int64
		for {
			res, err := c.Get(ctx, key, end, clientv3.WithLimit(500), clientv3.WithRev(revision))
			if err != nil {
				return n, err
			}
			revision = res.Header.Revision
			n += int64(len(res.Kvs))
			if !res.More || len(res.Kvs) == 0 {
				return n, nil
			}
			key = string(res.Kvs[len(res.Kvs)-1].Key) + "\x00"
		}
	}
	for r := 0; r < p.Reps; r++ {
		for _, l := range p.Listings {
			var n int64
			err := h.time(l.Name, func() (err error) {
				n, err = listOnce(l)
				return
			})
			if err != nil {
				errs.addErr(err)
			} else if n != l.Expect {
				errs.add(fmt.Sprintf("%s: got %d keys, want %d", l.Name, n, l.Expect))
			}
		}
	}
	return map[string]interface{}{"hist": h, "errors": errs}, nil
}
