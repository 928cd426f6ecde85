// Command loadgen is the bench's load generator: etcd's own Go client
// (clientv3, the client kube-apiserver uses) driven by the coordinator
// (bench/main.ts) over JSON lines.
//
// Stdin: {"id":N,"job":"name","params":{...}} starts a job;
// {"id":N,"stop":{...}} sends a running job its stop message.
// Stdout: {"hello":true} once, then {"id":N,"ready":...} when a job is set
// up (watchers created, ...) and {"id":N,"done":...} or {"id":N,"error":"..."}.
//
// It is built by the bench in GOPATH mode from Debian's golang-etcd-server-dev
// sources (see bench/gobuild.ts): no module downloads.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
)

// control is what a running job gets from the coordinator.
type control struct {
	ready   func(data interface{})
	stopped <-chan json.RawMessage
}

type jobFunc func(params json.RawMessage, ctl control) (interface{}, error)

var jobs = map[string]jobFunc{}

// register adds a job under its name; each job file registers its jobs in
// init. The job's parameters are decoded (strictly) into a fresh P first.
func register[P any](name string, fn func(p *P, ctl control) (interface{}, error)) {
	jobs[name] = func(raw json.RawMessage, ctl control) (interface{}, error) {
		p := new(P)
		if err := decode(raw, p); err != nil {
			return nil, err
		}
		return fn(p, ctl)
	}
}

var out = struct {
	sync.Mutex
	w *bufio.Writer
}{w: bufio.NewWriter(os.Stdout)}

func send(msg map[string]interface{}) {
	line, err := json.Marshal(msg)
	if err != nil {
		line, _ = json.Marshal(map[string]interface{}{"id": msg["id"], "error": err.Error()})
	}
	out.Lock()
	defer out.Unlock()
	out.w.Write(line)
	out.w.WriteByte('\n')
	out.w.Flush()
}

type request struct {
	ID     int             `json:"id"`
	Job    string          `json:"job"`
	Params json.RawMessage `json:"params"`
	Stop   json.RawMessage `json:"stop"`
}

func main() {
	send(map[string]interface{}{"hello": true})
	var mu sync.Mutex
	stops := map[int]chan json.RawMessage{}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	for in.Scan() {
		var r request
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			continue
		}
		if r.Stop != nil {
			mu.Lock()
			if ch, ok := stops[r.ID]; ok {
				ch <- r.Stop
			}
			mu.Unlock()
			continue
		}
		fn, ok := jobs[r.Job]
		if !ok {
			send(map[string]interface{}{"id": r.ID, "error": "unknown job " + r.Job})
			continue
		}
		stop := make(chan json.RawMessage, 1)
		mu.Lock()
		stops[r.ID] = stop
		mu.Unlock()
		go func(r request) {
			defer func() {
				mu.Lock()
				delete(stops, r.ID)
				mu.Unlock()
			}()
			ctl := control{
				ready: func(data interface{}) {
					if data == nil {
						data = true
					}
					send(map[string]interface{}{"id": r.ID, "ready": data})
				},
				stopped: stop,
			}
			res, err := fn(r.Params, ctl)
			if err != nil {
				send(map[string]interface{}{"id": r.ID, "error": err.Error()})
				return
			}
			send(map[string]interface{}{"id": r.ID, "done": res})
		}(r)
	}
	// The coordinator closed stdin: it is gone or done with us.
	os.Exit(0)
}
