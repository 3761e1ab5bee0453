package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/apitest"
)

// Response is one HTTP exchange, kept for the final scans.
type Response struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

func (r Response) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, r.Body)
}

// JSON decodes the body into a map, nil when it is not a JSON object.
func (r Response) JSON() map[string]any {
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return nil
	}
	return body
}

// ID is the "id" of a JSON body, "" without one.
func (r Response) ID() string {
	id, _ := r.JSON()["id"].(string)
	return id
}

// SessionToken is the token of the session a 201 to POST /users opened,
// "" without one.
func (r Response) SessionToken() string {
	session, _ := r.JSON()["session"].(map[string]any)
	token, _ := session["token"].(string)
	return token
}

// Error returns the code and fields of an error body.
func (r Response) Error() (code string, fields map[string]string) {
	var body struct {
		Error struct {
			Code   string            `json:"code"`
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return "", nil
	}
	return body.Error.Code, body.Error.Fields
}

// User is a registration the test sends, with the id it got.
type User struct {
	ID, Name, Email, Password string
}

// Points is the body of GET /users/{id}/points.
type Points struct {
	UserID  string `json:"user_id"`
	Balance int    `json:"balance"`
	Entries []struct {
		Amount    int       `json:"amount"`
		Reason    string    `json:"reason"`
		GrantedAt time.Time `json:"granted_at"`
	} `json:"entries"`
}

// Sessions are the session tokens of the users a test registered, by id.
type Sessions struct {
	mu     sync.Mutex
	tokens map[string]string
}

func newSessions() *Sessions { return &Sessions{tokens: map[string]string{}} }

func (s *Sessions) set(id, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[id] = token
}

// Token is the session token of the user, "" when none was kept.
func (s *Sessions) Token(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[id]
}

// Client is the HTTP client of the service under test. It follows no
// redirect, and records every response for the final scans. It keeps the
// session a registration opens and sends it with the requests about that
// user (/users/{id}...) that carry no Authorization of their own; an empty
// Authorization header sends none.
type Client struct {
	// Base is the service's URL: http://host:port.
	Base   string
	client *http.Client
	// contract checks each exchange; nil: none.
	contract *apitest.Validator
	sessions *Sessions

	mu        sync.Mutex
	responses []Response
}

// NewClient returns a client of the service serving on addr (host:port).
func NewClient(addr string) *Client {
	return &Client{Base: "http://" + addr, sessions: newSessions(), client: &http.Client{
		Timeout:       60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// checkContract sends every exchange through v, which fails its test on a
// breach of the API's contract.
func (c *Client) checkContract(v *apitest.Validator) {
	c.contract = v
	c.client.Transport = v.Transport(nil)
}

// OneConnectionEach is a client of the same service that opens a
// connection for each request and keeps none: every request of a burst is
// sent at once, none waits to reuse the connection of another.
func (c *Client) OneConnectionEach() *Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	each := NewClient(strings.TrimPrefix(c.Base, "http://"))
	each.sessions = c.sessions
	each.client.Transport = transport
	if c.contract != nil {
		each.client.Transport = c.contract.Transport(transport)
	}
	return each
}

// Do sends a request built by the test, and reads the whole answer.
func (c *Client) Do(req *http.Request) (Response, error) {
	c.authorize(req)
	resp, err := c.client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	r := Response{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Header: resp.Header, Body: body}
	if req.Method == http.MethodPost && req.URL.Path == "/users" && r.Status == http.StatusCreated {
		if token := r.SessionToken(); token != "" {
			c.sessions.set(r.ID(), token)
		}
	}
	c.mu.Lock()
	c.responses = append(c.responses, r)
	c.mu.Unlock()
	return r, nil
}

// authorize sends the session of the user a /users/{id} path names, when
// the request carries no Authorization; an empty one it drops.
func (c *Client) authorize(req *http.Request) {
	if values, set := req.Header["Authorization"]; set {
		if len(values) == 1 && values[0] == "" {
			req.Header.Del("Authorization")
		}
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/users/")
	if !ok {
		return
	}
	id, _, _ := strings.Cut(rest, "/")
	if token := c.sessions.Token(id); token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

// Sessions are the session tokens this client keeps.
func (c *Client) Sessions() *Sessions { return c.sessions }

// Request sends method to path, with a body of contentType when body is
// not nil, and header.
func (c *Client) Request(method, path, contentType string, body io.Reader, header http.Header) (Response, error) {
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		return Response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return c.Do(req)
}

// Get sends GET path.
func (c *Client) Get(path string) (Response, error) {
	return c.Request(http.MethodGet, path, "", nil, nil)
}

// MustGet sends GET path and fails the test when no answer comes.
func (c *Client) MustGet(t testing.TB, path string) Response {
	t.Helper()
	r, err := c.Get(path)
	require.NoError(t, err)
	return r
}

// Post sends POST path with a body of contentType.
func (c *Client) Post(path, contentType string, body io.Reader, header http.Header) (Response, error) {
	return c.Request(http.MethodPost, path, contentType, body, header)
}

// RegisterBody is the JSON body of POST /users for u.
func RegisterBody(u User) []byte {
	body, _ := json.Marshal(map[string]string{"name": u.Name, "email": u.Email, "password": u.Password})
	return body
}

// Register sends POST /users for u, with header.
func (c *Client) Register(u User, header http.Header) (Response, error) {
	return c.Post("/users", "application/json", bytes.NewReader(RegisterBody(u)), header)
}

// MustRegister registers u, requires a 201 and returns u with its id.
func (c *Client) MustRegister(t testing.TB, u User) User {
	t.Helper()
	r, err := c.Register(u, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	u.ID = r.ID()
	require.NotEmpty(t, u.ID, r.String())
	return u
}

// Points reads a user's points, or false when they cannot be read.
func (c *Client) Points(id string) (Points, bool) {
	r, err := c.Get("/users/" + id + "/points")
	if err != nil || r.Status != http.StatusOK {
		return Points{}, false
	}
	var p Points
	if json.Unmarshal(r.Body, &p) != nil {
		return Points{}, false
	}
	return p, true
}

// HasSignupPoints reports whether the user's points read SignupPoints.
func (c *Client) HasSignupPoints(id string) bool {
	p, ok := c.Points(id)
	return ok && p.Balance == SignupPoints
}

// Ready asks /readyz; it answers false on any failure, with what it got.
func (c *Client) Ready() (bool, string) {
	r, err := c.Get("/readyz")
	if err != nil {
		return false, err.Error()
	}
	code, _ := r.Error()
	return r.Status == http.StatusOK, fmt.Sprintf("%d %s", r.Status, code)
}

// Responses returns every response so far.
func (c *Client) Responses() []Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Response(nil), c.responses...)
}
