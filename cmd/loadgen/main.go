// Command loadgen drives a running onboard service over HTTP and times
// each registration and its effects. It runs its own SMTP sink, so start
// the service with SMTP_URL pointing at it (and without a registration
// limit: every request comes from one address):
//
//	SMTP_URL=smtp://127.0.0.1:2525 PUBSUB=sql DATABASE_URL=postgres://… MASTER_KEY=$(openssl rand -base64 32) \
//	  RATE_LIMIT_PASSWORDS=off bin/onboard &
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -c 8 -n 2000        # closed loop
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -rate 10 -duration 20s  # open loop
//
// Before the load it measures the bcrypt bound: bcrypt-only hashes/s at
// -bcrypt-cost (the service's BCRYPT_COST) on every core, while the service
// is idle. It prints one table: registrations/s and its share of the bound,
// the 201 latency, and the latency from each 201 to its welcome email at the
// sink and to its points being visible over the API.
//
// With -flood it measures the registration limit instead, against a
// service on a loopback address (and its default RATE_LIMIT_PASSWORDS):
// a reader times GET /users/{id} alone, then while one client floods
// POST /users over hundreds of connections and another registers a few
// users. The three clients are 127.0.0.2, .3 and .4, bound as source
// addresses (-clients source), or named in X-Forwarded-For to a service
// run with TRUSTED_PROXIES=127.0.0.1 (-clients xff):
//
//	go run ./cmd/loadgen -flood -url http://127.0.0.1:8080
//
// `loadgen seed -users N` writes N registered users, their welcome emails
// sent and their points granted, straight into the database of the
// service's environment (DATABASE_URL, MASTER_KEY): a store to load.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type options struct {
	url            string
	concurrency    int
	rate           float64
	count          int
	duration       time.Duration
	smtpListen     string
	bcryptCost     int
	bcryptDuration time.Duration
	effectsTimeout time.Duration
	pid            int
	pointsEvery    time.Duration
	readsEvery     time.Duration
	readyMs        float64
	metricsURL     string
	samples        bool
	cpuOf          string
	jsonOut        string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "seed" {
		if err := runSeed(os.Args[2:], os.Getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.url, "url", "http://127.0.0.1:8080", "the service's base URL")
	flag.IntVar(&o.concurrency, "c", 8, "closed loop: workers, each sending its next registration once the last answered")
	flag.Float64Var(&o.rate, "rate", 0, "open loop: registrations per second, sent on schedule (overrides -c)")
	flag.IntVar(&o.count, "n", 0, "stop after this many registrations")
	flag.DurationVar(&o.duration, "duration", 0, "stop after this long")
	flag.StringVar(&o.smtpListen, "smtp-listen", "127.0.0.1:2525", "the SMTP sink's address (the service's SMTP_URL)")
	flag.IntVar(&o.bcryptCost, "bcrypt-cost", 10, "the service's BCRYPT_COST, for the bcrypt bound")
	flag.DurationVar(&o.bcryptDuration, "bcrypt-for", 3*time.Second, "how long to measure the bcrypt bound")
	flag.DurationVar(&o.effectsTimeout, "effects-timeout", 30*time.Second, "how long to wait for the effects after the last 201")
	flag.IntVar(&o.pid, "pid", 0, "the service's process id, to report its peak RSS")
	flag.DurationVar(&o.pointsEvery, "points-every", defaultPointsPollEvery, "how often a user's points are "+
		"asked for while unseen (or a tenth of the wait so far, whichever is longer): the points latency is known to that")
	flag.StringVar(&o.cpuOf, "cpu-of", "", "with -pid: also sum the CPU time of the processes of these names "+
		"(space-separated, as in /proc/<pid>/comm: postgres beam.smp) and report it per 201 beside bcrypt")
	flag.DurationVar(&o.readsEvery, "reads-every", 0, "also time GET /users/{id} of a user of the run, "+
		"picked at random, this often (0: no reads)")
	flag.StringVar(&o.metricsURL, "metrics", "", "with -pid: the service's /metrics URL, whose "+hashCPUSeries+
		" is the CPU its bcrypt took, subtracted in place of the bound's estimate")
	flag.Float64Var(&o.readyMs, "ready-ms", 0, "the service's start-to-ready time, measured by the caller, to report with the figures")
	flag.BoolVar(&o.samples, "samples", false, "-json: also write every email and read latency, so that runs can be pooled")
	flag.StringVar(&o.jsonOut, "json", "", "also write the figures as one JSON object to this file")
	summary := flag.String("summary", "", "print one table of the runs of these labels (space-separated, "+
		"baseline first), read from -summary-dir's bench-<label>-max.json and bench-<label>-half.json, and exit")
	scaleSummary := flag.String("scale-summary", "", "print one table of scripts/bench-scale.sh's runs of these labels "+
		"(the empty database's first), read from -summary-dir's bench-scale-<label>-max.json and -half.json, and exit")
	summaryDir := flag.String("summary-dir", "bin", "-summary: where the runs' JSON files are")
	flood := flag.Bool("flood", false, "measure the registration limit under a flood (see the package comment)")
	f := floodOptions{}
	flag.IntVar(&f.conns, "flood-conns", 300, "-flood: the flooder's connections")
	flag.Float64Var(&f.rate, "flood-rate", 2000, "-flood: the flooder's requests per second, over all its connections")
	flag.DurationVar(&f.duration, "flood-for", 10*time.Second, "-flood: how long the flood lasts")
	flag.IntVar(&f.maxSent, "flood-max", 200_000, "-flood: the most requests the flooder sends")
	flag.DurationVar(&f.idle, "idle-for", 5*time.Second, "-flood: how long the reader reads alone first")
	flag.Float64Var(&f.readRate, "read-rate", 100, "-flood: the reader's GET /users/{id} per second")
	flag.IntVar(&f.registers, "register", 5, "-flood: the registrar's registrations during the flood")
	flag.StringVar(&f.route, "flood-route", "register", "-flood: what the flooder sends: register (POST /users) or "+
		"email-change (PUT /users/{id}/email of its own account to a taken address)")
	flag.StringVar(&f.clients, "clients", "source", "-flood: source (bind 127.0.0.2-4) or xff (X-Forwarded-For)")
	flag.Parse()
	if *summary != "" {
		if err := summarize(os.Stdout, *summaryDir, strings.Fields(*summary)); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *scaleSummary != "" {
		if err := summarizeScale(os.Stdout, *summaryDir, strings.Fields(*scaleSummary)); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if *flood {
		f.url, f.pid, f.jsonOut = o.url, o.pid, o.jsonOut
		if err := runFloodMode(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.count <= 0 && o.duration <= 0 {
		return errors.New("give -n or -duration")
	}
	if o.rate <= 0 && o.concurrency <= 0 {
		return errors.New("-c must be at least 1")
	}
	listener, err := net.Listen("tcp", o.smtpListen)
	if err != nil {
		return fmt.Errorf("SMTP sink: %w", err)
	}
	sink := startSink(listener)
	defer sink.close()

	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: max(o.concurrency, 64), MaxConnsPerHost: 0},
	}
	if err := checkReady(client, o.url); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if o.pointsEvery <= 0 {
		return errors.New("-points-every must be positive")
	}
	report := Report{BcryptCost: o.bcryptCost, PointsPolledEveryMs: ms(o.pointsEvery), ReadyMs: o.readyMs}
	var bcryptCPU time.Duration
	report.BcryptHashesPerSec, bcryptCPU = bcryptBound(o.bcryptCost, o.bcryptDuration)

	var meter *cpuMeter
	if o.pid > 0 {
		meter = newCPUMeter(o.pid, strings.Fields(o.cpuOf))
	}
	var cpuBefore map[string]time.Duration
	var hashCPUBefore time.Duration
	var hashCPUErr error
	if meter != nil {
		cpuBefore = meter.byName()
		if o.metricsURL != "" {
			hashCPUBefore, hashCPUErr = hashCPU(client, o.metricsURL)
		}
	}
	load := newLoad(o, client, sink)
	load.run(ctx)
	load.waitEffects(ctx, o.effectsTimeout)
	load.fill(&report)
	if meter != nil && report.Created > 0 {
		cpuAfter := meter.byName()
		bcryptTotal, measured := bcryptCPU*time.Duration(report.Created), false
		if o.metricsURL != "" {
			hashCPUAfter, err := hashCPU(client, o.metricsURL)
			if err = errors.Join(hashCPUErr, err); err != nil {
				return fmt.Errorf("-metrics: %w", err)
			}
			bcryptTotal, measured = hashCPUAfter-hashCPUBefore, true
		}
		report.fillCPU(cpuBefore, cpuAfter, bcryptTotal, measured)
	}
	if o.pid > 0 {
		report.PeakRSSMiB = peakRSSMiB(o.pid)
	}
	report.print(os.Stdout)
	if o.jsonOut != "" {
		figures, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, figures, 0o644)
	}
	return nil
}

func runFloodMode(f floodOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := checkReady(http.DefaultClient, f.url); err != nil {
		return err
	}
	report, err := runFlood(ctx, f)
	if err != nil {
		return err
	}
	report.print(os.Stdout)
	if f.jsonOut != "" {
		figures, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(f.jsonOut, figures, 0o644)
	}
	return nil
}

// checkReady fails at once when the service does not answer /readyz.
func checkReady(client *http.Client, baseURL string) error {
	resp, err := client.Get(baseURL + "/readyz")
	if err != nil {
		return fmt.Errorf("the service at %s does not answer: %w", baseURL, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the service at %s is not ready: /readyz answered %d", baseURL, resp.StatusCode)
	}
	return nil
}
