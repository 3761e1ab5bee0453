package ports

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultPasswordLimit is POST /users's default limit per client: far
// above what one person's signups need, far below a script's.
const DefaultPasswordLimit = "30/m,burst=10"

// RateLimit is a token bucket: Burst requests at once, then Count per Per.
// The zero value limits nothing.
type RateLimit struct {
	Count int
	Per   time.Duration
	Burst int
}

// maxRateCount bounds Count and Burst.
const maxRateCount = 1_000_000

var ratePeriods = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}

// ParseRateLimit reads "off" or "N/s", "N/m", "N/h", optionally followed by
// ",burst=B" (B defaults to N).
func ParseRateLimit(s string) (RateLimit, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return RateLimit{}, nil
	}
	bad := fmt.Errorf(`want "off" or N/s, N/m or N/h, optionally followed by ",burst=B", got %q`, s)
	spec, burst, withBurst := strings.Cut(s, ",")
	countText, unit, ok := strings.Cut(strings.TrimSpace(spec), "/")
	per, known := ratePeriods[unit]
	if !ok || !known {
		return RateLimit{}, bad
	}
	count, err := strconv.Atoi(countText)
	if err != nil {
		return RateLimit{}, bad
	}
	r := RateLimit{Count: count, Per: per, Burst: count}
	if withBurst {
		value, ok := strings.CutPrefix(strings.TrimSpace(burst), "burst=")
		if r.Burst, err = strconv.Atoi(value); !ok || err != nil {
			return RateLimit{}, bad
		}
	}
	return r, r.Validate()
}

// Off tells whether the limit lets everything through.
func (r RateLimit) Off() bool { return r == RateLimit{} }

// Validate returns every problem of the limit at once.
func (r RateLimit) Validate() error {
	if r.Off() {
		return nil
	}
	var errs []error
	if r.Count < 1 || r.Count > maxRateCount {
		errs = append(errs, fmt.Errorf("rate limit: want 1 to %d requests per period, got %d", maxRateCount, r.Count))
	}
	if r.Per <= 0 {
		errs = append(errs, fmt.Errorf("rate limit: want a positive period, got %s", r.Per))
	}
	if r.Burst < 1 || r.Burst > maxRateCount {
		errs = append(errs, fmt.Errorf("rate limit: want a burst of 1 to %d, got %d", maxRateCount, r.Burst))
	}
	return errors.Join(errs...)
}

// ParseTrustedProxies reads a comma-separated list of IP addresses and
// CIDR prefixes; "" is none.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	var errs []error
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		var prefix netip.Prefix
		var err error
		if strings.Contains(item, "/") {
			prefix, err = netip.ParsePrefix(item)
			if err == nil && prefix != prefix.Masked() {
				err = fmt.Errorf("%q has bits set past its prefix: did you mean %s?", item, prefix.Masked())
			}
		} else {
			var ip netip.Addr
			if ip, err = netip.ParseAddr(item); err == nil {
				prefix = netip.PrefixFrom(ip, ip.BitLen())
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("want IP addresses or CIDR prefixes: %w", err))
			continue
		}
		out = append(out, prefix)
	}
	return out, errors.Join(errs...)
}

// clientSweepEvery is how often the limiter drops the buckets of clients
// that have been idle long enough to have refilled.
const clientSweepEvery = 10 * time.Second

// maxLimitedClients bounds the buckets kept: with the default limit a
// client's bucket refills within 20 s, and more distinct clients than that
// within 20 s is a flood the bcrypt queue sheds anyway.
const maxLimitedClients = 10_000

// clientLimiters keeps one token bucket per client address. A bucket that
// has refilled is the same as a new one, so it is dropped; beyond max
// buckets, arbitrary ones are dropped, and those clients start again with a
// full burst: memory stays bounded whatever the number of addresses.
type clientLimiters struct {
	limit rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	buckets   map[netip.Addr]*rate.Limiter
	nextSweep time.Time
}

func newClientLimiters(r RateLimit, maxClients int) *clientLimiters {
	return &clientLimiters{
		limit:   rate.Limit(float64(r.Count) / r.Per.Seconds()),
		burst:   r.Burst,
		max:     maxClients,
		buckets: map[netip.Addr]*rate.Limiter{},
	}
}

// reserve takes a token of client's bucket at now and returns 0, or returns
// how long until a token is there (taking none).
func (l *clientLimiters) reserve(client netip.Addr, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	bucket := l.buckets[client]
	if bucket == nil {
		if !now.Before(l.nextSweep) || len(l.buckets) >= l.max {
			l.sweep(now)
		}
		bucket = rate.NewLimiter(l.limit, l.burst)
		l.buckets[client] = bucket
	}
	reservation := bucket.ReserveN(now, 1)
	if delay := reservation.DelayFrom(now); delay > 0 {
		reservation.CancelAt(now)
		return delay
	}
	return 0
}

// sweep drops the refilled buckets and, when still full, an eighth of the
// rest, so that a flood sweeps once every max/8 new clients.
func (l *clientLimiters) sweep(now time.Time) {
	for client, bucket := range l.buckets {
		if bucket.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, client)
		}
	}
	if len(l.buckets) >= l.max {
		drop := len(l.buckets) - l.max + max(l.max/8, 1)
		for client := range l.buckets { // in Go's random map order
			if drop == 0 {
				break
			}
			delete(l.buckets, client)
			drop--
		}
	}
	l.nextSweep = now.Add(clientSweepEvery)
}

// clientKey is the bucket of an address: IPv4 addresses one by one, IPv6
// ones by their /64, the smallest network a site is usually given.
func clientKey(ip string) netip.Addr {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{} // unknown clients share one bucket
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		return netip.PrefixFrom(addr, 64).Masked().Addr()
	}
	return addr
}
