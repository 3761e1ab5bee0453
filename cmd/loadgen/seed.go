package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/service"
)

// seedBatch is how many users one transaction of the seeder writes.
const seedBatch = 1000

// seedWorkers is how many transactions the seeder runs at once.
const seedWorkers = 2

// runSeed is `loadgen seed -users N`: it writes N registered users whose
// welcome email was sent and signup points granted, as the service leaves
// them, straight into the database that the service's own environment
// (DATABASE_URL, MASTER_KEY, BCRYPT_COST, SIGNUP_POINTS) names. Every user
// has the password -password.
func runSeed(args []string, getenv func(string) string, out io.Writer) error {
	flags := flag.NewFlagSet("seed", flag.ContinueOnError)
	users := flags.Int("users", 0, "how many users to write")
	password := flags.String("password", "seeded-user-password-1", "every seeded user's password")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *users <= 0 {
		return errors.New("seed: give -users N, at least 1")
	}
	cfg, err := service.LoadConfig(getenv)
	if err != nil {
		return err
	}
	ctx := context.Background()
	db, err := sqldb.Open(ctx, cfg.DatabaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	store, err := service.OpenUserStore(ctx, cfg, db)
	if err != nil {
		return err
	}
	// As a start of the service would, so that a start after the seed
	// finds the data upgrades done.
	if err := service.UpgradeStoredData(ctx, db, store, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(*password), cfg.BcryptCost)
	if err != nil {
		return err
	}
	s := seeder{db: db, dialect: sqldb.Of(db), points: cfg.SignupPoints, run: uuid.NewString()[:8],
		write: func(ctx context.Context, batch []domain.UserRegistered) error {
			return store.SeedUsers(ctx, batch, hash)
		}}
	start := time.Now()
	if err := s.seed(ctx, *users, out); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "seeded %d users in %.1f s: %s to %s, password %q\n", *users, time.Since(start).Seconds(),
		s.address(0), s.address(*users-1), *password)
	return err
}

type seeder struct {
	db      *sql.DB
	dialect sqldb.Dialect
	points  int
	run     string // in every seeded address, so that seeds add up
	write   func(ctx context.Context, batch []domain.UserRegistered) error
}

// seed writes n users in batches, seedWorkers at a time, reporting its
// progress on out.
func (s seeder) seed(ctx context.Context, n int, out io.Writer) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range seedWorkers {
		wg.Go(func() {
			for {
				first := int(next.Add(seedBatch)) - seedBatch
				if first >= n || ctx.Err() != nil {
					return
				}
				if err := s.batch(ctx, first, min(first+seedBatch, n)); err != nil {
					cancel(err)
					return
				}
				size := int64(min(seedBatch, n-first))
				if d := done.Add(size); d/100_000 > (d-size)/100_000 {
					_, _ = fmt.Fprintf(out, "  %d users\n", d)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// batch writes users first to last (excluded): their registrations, then
// their effects.
func (s seeder) batch(ctx context.Context, first, last int) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	registrations := make([]domain.UserRegistered, 0, last-first)
	var grants, marks [][]any
	for i := first; i < last; i++ {
		id := uuid.Must(uuid.NewV7()).String()
		registrations = append(registrations, domain.UserRegistered{
			UserID: id, Name: "Seeded User", Email: s.address(i),
			Locale: domain.DefaultLocale, RegisteredAt: now,
		})
		grants = append(grants, []any{id, domain.ReasonSignup, s.points, now})
		marks = append(marks, []any{event.SendWelcomeEmailName, id, "done", 0})
	}
	if err := s.write(ctx, registrations); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := sqldb.InsertRows(ctx, tx, s.dialect, "points_entries", "user_id, reason, amount, granted_at", grants); err != nil {
		return err
	}
	err = sqldb.InsertRows(ctx, tx, s.dialect, "processed_messages", "handler, message_key, state, claimed_until_ms", marks)
	if err != nil {
		return err
	}
	return tx.Commit()
}

// address is seeded user i's address.
func (s seeder) address(i int) string { return fmt.Sprintf("seed-%s-%d@example.com", s.run, i) }
