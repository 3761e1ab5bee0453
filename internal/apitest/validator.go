package apitest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// Validator checks every exchange that goes through its Handler or
// Transport against the contract, failing its test on a breach, and
// records the operations reached.
type Validator struct {
	t        testing.TB
	contract *Contract
	mu       sync.Mutex
	reached  map[string]bool
}

// New returns a Validator that reports to t.
func New(t testing.TB) *Validator {
	t.Helper()
	contract, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return &Validator{t: t, contract: contract, reached: map[string]bool{}}
}

// Contract returns the contract the validator checks against.
func (v *Validator) Contract() *Contract { return v.contract }

// check validates ex and records its operation; a breach fails the test.
func (v *Validator) check(ex Exchange) {
	operation, err := v.contract.Check(ex.Request.Context(), ex)
	if operation != "" {
		v.mu.Lock()
		v.reached[operation] = true
		v.mu.Unlock()
	}
	if err != nil {
		v.t.Errorf("%v", err)
	}
}

// Unreached lists the contract's operations no exchange reached, sorted.
func (v *Validator) Unreached() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.DeleteFunc(v.contract.Operations(), func(op string) bool { return v.reached[op] })
}

// Handler serves next, then validates the exchange.
func (v *Validator) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			v.t.Errorf("read the request's body: %v", err)
			return
		}
		sent := r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		defer func() { _ = res.Body.Close() }()
		for name, values := range res.Header {
			w.Header()[name] = values
		}
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(rec.Body.Bytes())
		v.check(Exchange{Request: sent, RequestBody: body, Status: res.StatusCode, Header: res.Header,
			Body: rec.Body.Bytes()})
	})
}

// Transport sends each request through next (http.DefaultTransport when
// nil), then validates the exchange. It reads the response's body whole.
func (v *Validator) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripper{v: v, next: next}
}

type roundTripper struct {
	v    *Validator
	next http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(got))
	rt.v.check(Exchange{Request: req, RequestBody: body, Status: resp.StatusCode, Header: resp.Header, Body: got})
	return resp, nil
}
