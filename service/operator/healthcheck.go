package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// healthcheckTimeout bounds the health check's request: a service that
// does not answer /healthz within it is not healthy, whatever the
// container runtime's own timeout.
const healthcheckTimeout = 3 * time.Second

// healthcheck asks the service of this container whether it is alive: GET
// /healthz on the loopback address of its HTTP_ADDR port, nil on 200. It
// gives an image without a shell or curl its HEALTHCHECK; it needs neither
// the database nor the broker.
func healthcheck(ctx context.Context, httpAddr string, out io.Writer) error {
	target, err := healthzURL(httpAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s answered %s", target, resp.Status)
	}
	_, err = fmt.Fprintf(out, "GET %s: %s\n", target, resp.Status)
	return err
}

// healthzURL is the address of /healthz for a service listening on
// httpAddr: a wildcard host (":8080", "0.0.0.0:8080", "[::]:8080") is
// reached on the loopback interface, another host as it is.
func healthzURL(httpAddr string) (string, error) {
	host, portName, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return "", errors.New("healthcheck: HTTP_ADDR is not host:port")
	}
	port, err := net.LookupPort("tcp", portName)
	if err != nil || port == 0 {
		return "", errors.New("healthcheck: HTTP_ADDR names no fixed port")
	}
	if ip := net.ParseIP(host); host == "" || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/healthz", nil
}
