// Command pubsub-emulator serves Google Cloud Pub/Sub's gRPC API from
// memory, with Google's own fake (cloud.google.com/go/pubsub/v2/pstest), for
// PUBSUB=googlecloud in tests and local runs: set PUBSUB_EMULATOR_HOST to
// its address. It keeps nothing across a restart, and models no quota,
// region or IAM.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8085", "host:port to serve on")
	flag.Parse()
	// Listen first, so that an address in use fails here, in words.
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pubsub-emulator:", err)
		os.Exit(1)
	}
	_ = listener.Close()
	server := pstest.NewServerWithAddress(*addr)
	fmt.Printf("pubsub-emulator: serving Pub/Sub on %s\n", server.Addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	_ = server.Close()
}
