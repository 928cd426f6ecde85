package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
)

func init() {
	register("loginFlood", loginFlood)
}

type loginFloodParams struct {
	Target string `json:"target"`
	Logins int    `json:"logins"`
	Conns  int    `json:"conns"`
}

// loginFlood enables auth (a root user, as etcdctl's quick start does), then
// sends Logins bad logins at once over Conns connections — a third for a real
// user with a wrong password, the rest for made-up names — while another
// client, logged in as root, reads one key every 5 ms until the flood is
// answered: its Range latency is what the flood costs everyone else. Auth
// stays on: the store is thrown away after the run.
func loginFlood(p *loginFloodParams, _ control) (interface{}, error) {
	admin, err := dial(p.Target)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	setup := []func(ctx context.Context) error{
		func(ctx context.Context) error { _, err := admin.UserAdd(ctx, "root", "rootpw"); return err },
		func(ctx context.Context) error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func(ctx context.Context) error { _, err := admin.UserAdd(ctx, "victim", "victimpw"); return err },
		func(ctx context.Context) error { _, err := admin.AuthEnable(ctx); return err },
	}
	for _, step := range setup {
		if err := call(step); err != nil {
			return nil, fmt.Errorf("auth set-up: %v", err)
		}
	}
	reader, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{p.Target},
		DialTimeout: 5 * time.Second,
		Username:    "root",
		Password:    "rootpw",
	})
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	attackers, err := dialN(p.Target, p.Conns)
	if err != nil {
		return nil, err
	}
	defer closeAll(attackers)

	h, errs := newHistograms(), newErrors()
	get := func() error {
		return call(func(ctx context.Context) error { _, err := reader.Get(ctx, "/flood/key"); return err })
	}
	if err := get(); err != nil { // warm-up: the reader's connection and token are not sampled
		return nil, err
	}
	flooding := make(chan struct{})
	var readerDone sync.WaitGroup
	readerDone.Add(1)
	go func() {
		defer readerDone.Done()
		for {
			select {
			case <-flooding:
				return
			default:
			}
			if err := h.time("range, another client", get); err != nil {
				errs.addErr(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < p.Logins; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			name := fmt.Sprintf("made-up-%d", i)
			if i%3 == 0 {
				name = "victim"
			}
			auth := pb.NewAuthClient(attackers[i%len(attackers)].ActiveConnection())
			<-start
			err := call(func(ctx context.Context) error {
				_, err := auth.Authenticate(ctx, &pb.AuthenticateRequest{Name: name, Password: "wrong"})
				return err
			})
			outcome := "accepted"
			if err != nil {
				outcome = errorText(err)
			}
			mu.Lock()
			outcomes[outcome]++
			mu.Unlock()
		}(i)
	}
	time.Sleep(200 * time.Millisecond) // the reader's first samples come before the flood
	t0 := time.Now()
	close(start)
	wg.Wait()
	floodMs := msSince(t0)
	close(flooding)
	readerDone.Wait()
	return map[string]interface{}{"hist": h, "errors": errs, "logins": outcomes, "floodMs": floodMs}, nil
}
