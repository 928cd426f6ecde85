package main

import (
	"context"
	"fmt"
	"io"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
)

// rawCodec sends a RangeRequest and hands back each response's bytes: etcd
// 3.7's RangeStreamResponse is not in the 3.4 client sources the bench builds on.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return v.(*pb.RangeRequest).Marshal() }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i, c := range b {
		x |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}

// rangeStream lists [key, end) by KV.RangeStream (etcd 3.7) and returns how
// many kvs its chunks carried; the last chunk must carry the header.
func rangeStream(ctx context.Context, c *clientv3.Client, key, end string) (int64, error) {
	desc := &grpc.StreamDesc{ServerStreams: true}
	stream, err := c.ActiveConnection().NewStream(ctx, desc, "/etcdserverpb.KV/RangeStream",
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return 0, err
	}
	if err := stream.SendMsg(&pb.RangeRequest{Key: []byte(key), RangeEnd: []byte(end)}); err != nil {
		return 0, err
	}
	if err := stream.CloseSend(); err != nil {
		return 0, err
	}
	var n, revision int64
	for {
		var msg []byte
		if err := stream.RecvMsg(&msg); err == io.EOF {
			break
		} else if err != nil {
			return n, err
		}
		// RangeStreamResponse{range_response = 1}: one length-delimited field.
		if len(msg) == 0 || msg[0] != 0x0a {
			return n, fmt.Errorf("unexpected RangeStreamResponse")
		}
		size, k := uvarint(msg[1:])
		var r pb.RangeResponse
		if err := r.Unmarshal(msg[1+k : 1+k+int(size)]); err != nil {
			return n, err
		}
		n += int64(len(r.Kvs))
		if r.Header != nil {
			revision = r.Header.Revision
		}
	}
	if revision == 0 {
		return n, fmt.Errorf("RangeStream ended without a header revision")
	}
	return n, nil
}
