package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
	"google.golang.org/grpc/status"
)

// callTimeout bounds every unary call, as the old generator's deadline did.
const callTimeout = 30 * time.Second

// dial opens one client, that is one gRPC connection, to target (host:port).
func dial(target string) (*clientv3.Client, error) {
	logCfg := zap.NewProductionConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	return clientv3.New(clientv3.Config{
		Endpoints:          []string{target},
		DialTimeout:        5 * time.Second,
		MaxCallRecvMsgSize: math.MaxInt32,
		MaxCallSendMsgSize: 64 << 20,
		LogConfig:          &logCfg,
	})
}

// dialN opens n clients (at least one) to target.
func dialN(target string, n int) ([]*clientv3.Client, error) {
	if n < 1 {
		n = 1
	}
	cs := make([]*clientv3.Client, 0, n)
	for i := 0; i < n; i++ {
		c, err := dial(target)
		if err != nil {
			closeAll(cs)
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func closeAll(cs []*clientv3.Client) {
	for _, c := range cs {
		c.Close()
	}
}

// call gives fn a context bounded by callTimeout.
func call(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	return fn(ctx)
}

// errorText is a short description of an error: the gRPC code and message.
func errorText(err error) string {
	if s, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s: %s", s.Code(), s.Message())
	}
	return err.Error()
}

// errorCounts counts error messages (at most 160 characters each).
type errorCounts struct {
	mu     sync.Mutex
	Counts map[string]int `json:"counts"`
	Total  int            `json:"total"`
}

func newErrors() *errorCounts { return &errorCounts{Counts: map[string]int{}} }

func (e *errorCounts) add(msg string) {
	if len(msg) > 160 {
		msg = msg[:160]
	}
	e.mu.Lock()
	e.Counts[msg]++
	e.Total++
	e.mu.Unlock()
}

func (e *errorCounts) addErr(err error) { e.add(errorText(err)) }

func (e *errorCounts) MarshalJSON() ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return marshal(map[string]interface{}{"counts": e.Counts, "total": e.Total})
}

// marshal is json.Marshal without the method-set recursion of the types above.
func marshal(v interface{}) ([]byte, error) { return json.Marshal(v) }

// value is a value of size bytes of fill.
func value(size int, fill byte) string { return strings.Repeat(string([]byte{fill}), size) }

// prefixEnd is the range end that makes prefix a prefix range.
func prefixEnd(prefix string) string {
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// decode reads a job's parameters.
func decode(params json.RawMessage, v interface{}) error {
	d := json.NewDecoder(bytes.NewReader(params))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("bad parameters: %v", err)
	}
	return nil
}

// deadline runs loops until d has passed.
func deadline(d time.Duration) func() bool {
	end := time.Now().Add(d)
	return func() bool { return time.Now().Before(end) }
}

// parallel runs fn(0..n-1) in n goroutines and waits for all.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			fn(i)
		}(i)
	}
	wg.Wait()
}

// session is what most jobs start with: their connections, latency
// histograms and error counts.
type session struct {
	conns []*clientv3.Client
	h     *histograms
	errs  *errorCounts
}

// open dials n connections (at least one) to target.
func open(target string, n int) (*session, error) {
	conns, err := dialN(target, n)
	if err != nil {
		return nil, err
	}
	return &session{conns: conns, h: newHistograms(), errs: newErrors()}, nil
}

// conn is connection i, round robin.
func (s *session) conn(i int) *clientv3.Client { return s.conns[i%len(s.conns)] }

func (s *session) close() { closeAll(s.conns) }
