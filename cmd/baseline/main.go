// Command baseline is the design onboard is measured against, not a part of
// it: the tutorial's user service as a new team would first write it. A
// registration hashes the password with bcrypt, INSERTs one row and
// publishes UserRegistered to RabbitMQ, with no outbox (a crash between the
// two loses the event), on non-durable queues (a broker restart loses what
// they hold) and with handlers that are not idempotent (a redelivery sends
// a second email and grants the points twice).
//
// It answers the subset of onboard's API that cmd/loadgen drives:
// POST /users, GET /users/{id}/points with the session's bearer token, and
// GET /readyz; GET /metrics gives the one series the load generator reads,
// the CPU its bcrypt took, counted as onboard counts it. scripts/bench-load.sh runs it beside onboard in one run:
//
//	DATABASE_URL=postgres://… AMQP_URL=amqp://… SMTP_URL=smtp://127.0.0.1:2525 bin/baseline
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
)

const (
	topic         = "baseline.UserRegistered"
	signupPoints  = 100
	maxBodyBytes  = 1 << 16
	schema        = `CREATE TABLE IF NOT EXISTS baseline_users (id uuid PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, password_hash text NOT NULL, session_token text NOT NULL, points integer NOT NULL DEFAULT 0)`
	defaultAddr   = "127.0.0.1:8090"
	defaultSMTP   = "smtp://127.0.0.1:2525"
	defaultAMQP   = "amqp://guest:guest@127.0.0.1:5672/"
	defaultPGURL  = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	shutdownGrace = 5 * time.Second
)

// userRegistered is the event, as the tutorial publishes it.
type userRegistered struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type server struct {
	db        *pgxpool.Pool
	publisher message.Publisher
	hashCPU   atomic.Int64 // nanoseconds of CPU the hashes took
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("baseline stopped", "error", err)
		os.Exit(1)
	}
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func run(logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	db, err := pgxpool.New(ctx, env("DATABASE_URL", defaultPGURL))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(ctx, schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}

	amqpURL := env("AMQP_URL", defaultAMQP)
	wmLogger := watermill.NewSlogLogger(logger)
	publisher, err := amqp.NewPublisher(amqp.NewNonDurablePubSubConfig(amqpURL, nil), wmLogger)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer func() { _ = publisher.Close() }()

	smtpURL, err := url.Parse(env("SMTP_URL", defaultSMTP))
	if err != nil {
		return fmt.Errorf("SMTP_URL: %w", err)
	}
	handlers := map[string]func(context.Context, userRegistered) error{
		"welcome": func(_ context.Context, e userRegistered) error { return sendWelcome(smtpURL.Host, e) },
		"points": func(ctx context.Context, e userRegistered) error {
			_, err := db.Exec(ctx, `UPDATE baseline_users SET points = points + $1 WHERE id = $2`, signupPoints, e.ID)
			return err
		},
	}
	for name, handle := range handlers {
		// A fanout exchange per topic and a non-durable queue per handler.
		config := amqp.NewNonDurablePubSubConfig(amqpURL, amqp.GenerateQueueNameTopicNameWithSuffix(name))
		subscriber, err := amqp.NewSubscriber(config, wmLogger)
		if err != nil {
			return fmt.Errorf("subscriber %s: %w", name, err)
		}
		defer func() { _ = subscriber.Close() }()
		messages, err := subscriber.Subscribe(ctx, topic)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", name, err)
		}
		go consume(ctx, logger.With("handler", name), messages, handle)
	}

	s := &server{db: db, publisher: publisher}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /users", s.register)
	mux.HandleFunc("GET /users/{id}/points", s.points)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "onboard_password_hash_cpu_seconds_total %g\n", time.Duration(s.hashCPU.Load()).Seconds())
	})
	httpServer := &http.Server{Addr: env("HTTP_ADDR", defaultAddr), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = httpServer.Shutdown(shutdown)
	}()
	logger.Info("baseline serving", "addr", httpServer.Addr)
	if err := httpServer.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// consume handles one handler's messages one at a time, acking each once
// handled and nacking (for redelivery) what failed.
func consume(ctx context.Context, logger *slog.Logger, messages <-chan *message.Message, handle func(context.Context, userRegistered) error) {
	for msg := range messages {
		var e userRegistered
		if err := json.Unmarshal(msg.Payload, &e); err != nil {
			logger.Error("dropping a malformed message", "error", err)
			msg.Ack()
			continue
		}
		if err := handle(ctx, e); err != nil {
			logger.Error("handler failed", "error", err)
			msg.Nack()
			continue
		}
		msg.Ack()
	}
}

func sendWelcome(addr string, e userRegistered) error {
	body := "From: welcome@example.com\r\nTo: " + e.Email + "\r\nSubject: Welcome\r\n\r\nWelcome, " + e.Name + "!\r\n"
	return smtp.SendMail(addr, nil, "welcome@example.com", []string{e.Email}, []byte(body))
}

func (s *server) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&req); err != nil ||
		req.Name == "" || !strings.Contains(req.Email, "@") || len(req.Password) < 8 {
		http.Error(w, `{"error":"invalid registration"}`, http.StatusBadRequest)
		return
	}
	hash, err := s.hash(req.Password)
	if err != nil {
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	}
	token := make([]byte, 32)
	_, _ = rand.Read(token)
	e := userRegistered{ID: uuid.NewString(), Name: req.Name, Email: strings.ToLower(req.Email)}
	_, err = s.db.Exec(r.Context(),
		`INSERT INTO baseline_users (id, name, email, password_hash, session_token) VALUES ($1, $2, $3, $4, $5)`,
		e.ID, e.Name, e.Email, string(hash), hex.EncodeToString(token))
	if err != nil {
		http.Error(w, `{"error":"email taken or database down"}`, http.StatusConflict)
		return
	}
	payload, _ := json.Marshal(e)
	// No outbox: a failed publish after the INSERT loses the event.
	if err := s.publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
		http.Error(w, `{"error":"publish failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": e.ID, "name": e.Name, "email": e.Email,
		"session": map[string]string{"token": hex.EncodeToString(token)},
	})
}

// hash is bcrypt's, its CPU time read from the clock of the thread it ran
// on and added to s.hashCPU.
func (s *server) hash(password string) ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, startErr := threadCPU()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if end, endErr := threadCPU(); startErr == nil && endErr == nil {
		s.hashCPU.Add(int64(end - start))
	}
	return hash, err
}

func (s *server) points(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	var stored string
	var balance int
	err = s.db.QueryRow(r.Context(), `SELECT session_token, points FROM baseline_users WHERE id = $1`, id).
		Scan(&stored, &balance)
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, `{"error":"internal"}`, http.StatusInternalServerError)
		return
	case subtle.ConstantTimeCompare([]byte(token), []byte(stored)) != 1:
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"balance": balance})
}
