package main

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func init() {
	register("freshness", freshness)
}

type freshnessParams struct {
	// Writer and Reader are two servers on one store (the same etcd twice
	// for the baseline); each gets its own connection.
	Writer string `json:"writer"`
	Reader string `json:"reader"`
	Count  int    `json:"count"`
	MaxMs  int    `json:"maxMs"`
}

// freshness writes a key through Writer and at once reads it through Reader,
// linearizable then serializable, one after the other: the first must see
// the write (the freshness check a linearizable read pays for), the second
// shows what the same Range costs without it.
func freshness(p *freshnessParams, _ control) (interface{}, error) {
	var clients []*clientv3.Client
	defer func() { closeAll(clients) }()
	for _, t := range []string{p.Writer, p.Reader} {
		c, err := dial(t)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	a, b := clients[0], clients[1]
	h := newHistograms()
	errs := newErrors()
	running := deadline(time.Duration(p.MaxMs) * time.Millisecond)
	writes := 0
	for i := 0; i < p.Count && running(); i++ {
		key := fmt.Sprintf("/freshness/%d", i%10)
		val := fmt.Sprintf("v%d", i)
		err := call(func(ctx context.Context) error {
			_, err := a.Put(ctx, key, val)
			return err
		})
		if err != nil {
			errs.addErr(err)
			continue
		}
		writes++
		for _, read := range []struct {
			op   string
			opts []clientv3.OpOption
		}{
			{"linearizable Range through B", nil},
			{"serializable Range through B", []clientv3.OpOption{clientv3.WithSerializable()}},
		} {
			var got *clientv3.GetResponse
			err := h.time(read.op, func() error {
				return call(func(ctx context.Context) (err error) {
					got, err = b.Get(ctx, key, read.opts...)
					return
				})
			})
			if err != nil {
				errs.addErr(err)
			} else if read.opts == nil && (len(got.Kvs) == 0 || string(got.Kvs[0].Value) != val) {
				errs.add("linearizable Range through B missed the write acknowledged through A")
			}
		}
	}
	return map[string]interface{}{"hist": h, "errors": errs, "writes": writes}, nil
}
