// Command sqs-emulator serves Amazon SQS and SNS from memory, for PUBSUB=sqs
// in tests and local runs: set AWS_ENDPOINT_URL to its address. The queues
// and topics are goaws's (github.com/Admiral-Piett/goaws), which speaks
// the query protocol (form requests, XML answers); the AWS SDK's SQS client
// speaks AWS JSON 1.0 since 2024, so a front here turns its JSON requests
// into goaws's form and goaws's XML answers back into JSON (front.go). SNS
// still speaks the query protocol and goes to goaws as it comes. It keeps
// nothing across a restart, and models no quota, region, IAM or policy.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/Admiral-Piett/goaws/app"
	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/router"
	log "github.com/sirupsen/logrus"
)

// Account is the account id of every ARN and queue URL the emulator gives.
const Account = "000000000000"

func main() {
	addr := flag.String("addr", "127.0.0.1:4100", "host:port to serve on")
	region := flag.String("region", "us-east-1", "the region its ARNs name (AWS_REGION of its clients)")
	flag.Parse()
	// Listen first, so that an address in use fails here, in words.
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqs-emulator:", err)
		os.Exit(1)
	}
	host, port, _ := net.SplitHostPort(listener.Addr().String())
	server := &http.Server{Handler: newHandler(host, port, *region), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("sqs-emulator: serving SQS and SNS on http://%s (region %s)\n", listener.Addr(), *region)
	go func() {
		if err := server.Serve(listener); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "sqs-emulator:", err)
			os.Exit(1)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	_ = server.Close()
}

// newHandler configures goaws (its settings are global) and returns the
// front on its router. Messages' visibility expires on goaws's 1 s tick.
func newHandler(host, port, region string) http.Handler {
	// goaws logs every message's body at info: only its warnings here.
	log.SetOutput(io.Discard)
	log.SetLevel(log.WarnLevel)
	app.CurrentEnvironment = app.Environment{
		Host:      host,
		Port:      port,
		Region:    region,
		AccountID: Account,
		QueueAttributeDefaults: app.EnvQueueAttributes{
			VisibilityTimeout:  30,
			MaximumMessageSize: 262144,
		},
	}
	go gosqs.PeriodicTasks(time.Second, make(chan struct{}))
	return front{goaws: router.New()}
}
