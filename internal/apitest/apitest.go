// Package apitest holds the tests to the API's contract, api/openapi.yaml:
// a Validator checks each request and response the tests exchange with
// the HTTP API against it (kin-openapi's openapi3filter), as an
// http.Handler around the API or an http.RoundTripper under a client, and
// records the operations they reached.
//
// Every response is validated: an undocumented status, header value, field
// or error code fails the test. A request is validated unless its answer
// is 4xx: a 4xx says the API refused the request, and the tests of hostile
// input send ill-formed ones on purpose, which the contract does not
// describe. A request whose path and method match no operation must get
// the router's 404 not-found or 405 method-not-allowed, or its redirect
// of a trailing slash to a path an operation takes.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/onboard/onboard/api"
)

// Contract is the loaded, validated api/openapi.yaml and its router.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
}

// Load reads and validates api/openapi.yaml. It is parsed once per test
// binary; the result is never modified.
var Load = sync.OnceValues(func() (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(api.OpenAPI()))
	if err != nil {
		return nil, fmt.Errorf("load the contract: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, errors.New("the contract is not OpenAPI 3.1")
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the contract is not valid OpenAPI: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the contract: %w", err)
	}
	return &Contract{doc: doc, router: router}, nil
})

// Operations lists the contract's operations as "METHOD /path/{param}",
// sorted.
func (c *Contract) Operations() []string {
	var ops []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// Exchange is one request and the answer it got.
type Exchange struct {
	// Request is the request as sent; its Body is not read (RequestBody
	// holds it).
	Request     *http.Request
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

func (e Exchange) String() string {
	return fmt.Sprintf("%s %s → %d", e.Request.Method, e.Request.URL.RequestURI(), e.Status)
}

// options: an undocumented status fails; a bearer token, its scheme in any
// letter case (RFC 9110 11.1), passes the contract's check of a secured
// operation (the service checks its value).
var options = &openapi3filter.Options{
	IncludeResponseStatus: true,
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		scheme, token, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
		if in.SecurityScheme.Type != "http" || in.SecurityScheme.Scheme != "bearer" || !strings.EqualFold(scheme, "Bearer") ||
			token == "" {
			return fmt.Errorf("no bearer token for %s", in.SecuritySchemeName)
		}
		return nil
	},
}

// Check returns why ex breaks the contract, or nil, and the operation it
// reached ("" when none).
func (c *Contract) Check(ctx context.Context, ex Exchange) (string, error) {
	req := ex.Request.Clone(ctx)
	req.Body = http.NoBody
	if len(ex.RequestBody) > 0 {
		req.Body = readCloser{bytes.NewReader(ex.RequestBody)}
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if c.isTrailingSlashRedirect(ctx, ex) {
			return "", nil
		}
		return "", c.checkUnrouted(ex, err)
	}
	operation := route.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: options}
	var errs []error
	if ex.Status < 400 || ex.Status >= 500 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			errs = append(errs, fmt.Errorf("request: %w", err))
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: ex.Status, Header: ex.Header,
		Options: options}
	out.SetBodyBytes(ex.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		errs = append(errs, fmt.Errorf("response: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return operation, fmt.Errorf("%s (%s) breaks the contract: %w", ex, operation, err)
	}
	return operation, nil
}

// checkUnrouted accepts, for a request no operation takes, the router's
// own 404 or 405 with its error body.
func (c *Contract) checkUnrouted(ex Exchange, routeErr error) error {
	want := map[error]int{routers.ErrPathNotFound: http.StatusNotFound, routers.ErrMethodNotAllowed: http.StatusMethodNotAllowed}
	status, known := want[routeErr]
	if !known || ex.Status != status {
		return fmt.Errorf("%s: no operation of the contract takes it (%w), yet the answer is not the router's %d",
			ex, routeErr, status)
	}
	if ex.Request.Method == http.MethodHead {
		return nil
	}
	var body any
	if err := json.Unmarshal(ex.Body, &body); err != nil {
		return fmt.Errorf("%s: the body is not JSON: %w", ex, err)
	}
	schema := c.doc.Components.Schemas["RouterError"].Value
	if err := schema.VisitJSON(body, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
		return fmt.Errorf("%s: the body is not the router's error: %w", ex, err)
	}
	return nil
}

// isTrailingSlashRedirect tells the router's redirect of a path with a
// trailing slash to the same path without it, one an operation takes:
// 301 for GET and HEAD, 307 for the other methods.
func (c *Contract) isTrailingSlashRedirect(ctx context.Context, ex Exchange) bool {
	want := http.StatusTemporaryRedirect
	if ex.Request.Method == http.MethodGet || ex.Request.Method == http.MethodHead {
		want = http.StatusMovedPermanently
	}
	path := ex.Request.URL.Path
	trimmed := strings.TrimSuffix(path, "/")
	if ex.Status != want || trimmed == path || ex.Header.Get("Location") != trimmed {
		return false
	}
	target := ex.Request.Clone(ctx)
	target.URL.Path, target.URL.RawPath = trimmed, ""
	_, _, err := c.router.FindRoute(target)
	return err == nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
