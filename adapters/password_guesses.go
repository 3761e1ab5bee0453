package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
)

// GuessLimit is how many password checks of one subject may fail in a row
// before each next one waits: FirstDelay after the Free-th failure, twice
// as long after each further one, at most MaxDelay.
type GuessLimit struct{ Free int }

// PasswordGuessesConfig configures PasswordGuesses.
type PasswordGuessesConfig struct {
	DB *sql.DB
	// Key keys the hashes that name the subjects in the table, so that no
	// client address or email is stored. At least 32 bytes. Required.
	Key []byte
	// Pair limits one client on one account: the attacker at one address.
	// Client limits one client on every account: one address spraying
	// many. Account limits every client on one account: a botnet, as
	// NIST SP 800-63B's 100 failures.
	Pair, Client, Account GuessLimit
	// FirstDelay and MaxDelay bound the waits after the free failures.
	FirstDelay, MaxDelay time.Duration
	// ForgetAfter: once the last failure is that old, the failures start
	// over.
	ForgetAfter time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Defaults of PasswordGuessesConfig.
var (
	DefaultGuessPair    = GuessLimit{Free: 5}
	DefaultGuessClient  = GuessLimit{Free: 20}
	DefaultGuessAccount = GuessLimit{Free: 100}
)

// Defaults of PasswordGuessesConfig's waits.
const (
	DefaultGuessFirstDelay  = time.Minute
	DefaultGuessMaxDelay    = time.Hour
	DefaultGuessForgetAfter = 24 * time.Hour
)

func (c *PasswordGuessesConfig) setDefaults() {
	for limit, fallback := range map[*GuessLimit]GuessLimit{
		&c.Pair: DefaultGuessPair, &c.Client: DefaultGuessClient, &c.Account: DefaultGuessAccount,
	} {
		if limit.Free == 0 {
			*limit = fallback
		}
	}
	if c.FirstDelay == 0 {
		c.FirstDelay = DefaultGuessFirstDelay
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultGuessMaxDelay
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = DefaultGuessForgetAfter
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate returns every problem of the configuration at once.
func (c PasswordGuessesConfig) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("password guesses: a database is required"))
	}
	if len(c.Key) < 32 {
		errs = append(errs, errors.New("password guesses: the subjects' key must be at least 32 bytes"))
	}
	for _, free := range []int{c.Pair.Free, c.Client.Free, c.Account.Free} {
		if free < 1 {
			errs = append(errs, fmt.Errorf("password guesses: want at least 1 free failure, got %d", free))
		}
	}
	if c.FirstDelay <= 0 || c.MaxDelay < c.FirstDelay {
		errs = append(errs, errors.New("password guesses: want 0 < first delay <= max delay"))
	}
	if c.ForgetAfter <= 0 {
		errs = append(errs, errors.New("password guesses: want a positive time to forget failures"))
	}
	return errors.Join(errs...)
}

// PasswordGuesses counts password checks in the database, so that every
// replica counts the same guesses. A check is counted before it is made
// by one conditional UPDATE per subject (the pair, the client, the
// account), all three in one transaction: of checks that race, only as many
// as a limit allows are let through. A limit reached is a wait that grows
// with each failure, never a lock-out that a stranger could renew: the
// owner at an address that has not failed still has the pair and client
// allowances of their own.
type PasswordGuesses struct {
	cfg     PasswordGuessesConfig
	table   limitTable
	queries struct {
		start, forgetOld string
		// take counts a check, and giveBack takes back one that proved
		// right, for each number of free failures.
		take, giveBack map[int]string
	}
}

// NewPasswordGuesses returns the counter.
func NewPasswordGuesses(cfg PasswordGuessesConfig) (*PasswordGuesses, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := sqldb.Of(cfg.DB)
	g := &PasswordGuesses{cfg: cfg}
	g.queries.start = d.Rebind(d.InsertOrIgnore(
		`INSERT INTO password_guesses (subject, failures, last_failed_ms, blocked_until_ms) VALUES (?, 0, 0, 0)`, "failures"))
	g.queries.forgetOld = d.Rebind(`UPDATE password_guesses SET failures = 0 WHERE subject = ? AND last_failed_ms <= ?`)
	// One statement counts the check if the subject is not waiting. MySQL
	// runs the assignments left to right, each seeing the ones before:
	// blocked_until_ms comes first, so that every dialect computes it from
	// the old row. Within the free failures it stays as it was: checks that
	// race commit in any order, and one that read the clock a moment
	// before another must not find a wait of the other's making.
	now := "?"
	if d.Is(sqldb.Postgres) {
		now = "CAST(? AS BIGINT)" // else PostgreSQL takes it for an int4
	}
	g.queries.take = map[int]string{}
	for _, free := range []int{cfg.Pair.Free, cfg.Client.Free, cfg.Account.Free} {
		g.queries.take[free] = d.Rebind(`UPDATE password_guesses SET
			blocked_until_ms = CASE WHEN failures + 1 < ` + strconv.Itoa(free) + ` THEN blocked_until_ms
				ELSE ` + now + ` + ` + g.delayAfter("failures + 1", free) + ` END,
			failures = failures + 1,
			last_failed_ms = ?
			WHERE subject = ? AND blocked_until_ms <= ?`)
	}
	g.table = limitTable{db: cfg.DB, what: "count a password check", refusal: "too many wrong passwords, try again later",
		until: d.Rebind(`SELECT blocked_until_ms FROM password_guesses WHERE subject = ?`)}
	// A right password takes back its own check alone: the checks in
	// flight beside it were counted before it and stay counted. A wait it
	// caused ends if the failures left are within the free ones.
	g.queries.giveBack = map[int]string{}
	for _, free := range []int{cfg.Pair.Free, cfg.Client.Free, cfg.Account.Free} {
		g.queries.giveBack[free] = d.Rebind(fmt.Sprintf(`UPDATE password_guesses SET
			blocked_until_ms = CASE WHEN failures - 1 < %d THEN 0 ELSE blocked_until_ms END,
			failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END
			WHERE subject = ?`, free))
	}
	return g, nil
}

// delayAfter is the SQL expression of the wait, in milliseconds, after
// the failure whose number is n (an SQL expression): none up to free,
// then FirstDelay, doubling up to MaxDelay. A CASE, as SQLite has no
// POWER.
func (g *PasswordGuesses) delayAfter(n string, free int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CASE WHEN %s < %d THEN 0", n, free)
	delay := g.cfg.FirstDelay
	for step := 0; delay < g.cfg.MaxDelay; step++ {
		fmt.Fprintf(&b, " WHEN %s = %d THEN %d", n, free+step, delay.Milliseconds())
		delay *= 2
	}
	fmt.Fprintf(&b, " ELSE %d END", g.cfg.MaxDelay.Milliseconds())
	return b.String()
}

// subject is one row the check counts on, with its free failures.
type subject struct {
	key  string
	free int
}

func (g *PasswordGuesses) subjects(account, client string) []subject {
	return []subject{
		{g.hash("account", account), g.cfg.Account.Free},
		{g.hash("pair", account, client), g.cfg.Pair.Free},
		{g.hash("client", client), g.cfg.Client.Free},
	}
}

func (g *PasswordGuesses) hash(kind string, parts ...string) string {
	return subjectKey(g.cfg.Key, "password-guesses", append([]string{kind}, parts...)...)
}

// Begin counts one check on the account from client, or returns a
// domain.KindTooMany error with the longest wait of the subjects that
// refuse; then nothing is counted.
func (g *PasswordGuesses) Begin(ctx context.Context, account, client string) error {
	now := g.cfg.Now()
	nowMS := now.UnixMilli()
	forgetBefore := nowMS - g.cfg.ForgetAfter.Milliseconds()
	var rows []limitRow
	for _, s := range g.subjects(account, client) {
		rows = append(rows, limitRow{
			key: s.key,
			prepare: []limitStatement{
				{g.queries.start, []any{s.key}}, {g.queries.forgetOld, []any{s.key, forgetBefore}},
			},
			count: limitStatement{g.queries.take[s.free], []any{nowMS, nowMS, s.key, nowMS}},
		})
	}
	return g.table.countAll(ctx, now, rows)
}

// Succeeded takes back the check of a right password from every row it
// was counted on: the checks that raced it stay counted, and the client
// earns nothing it did not spend.
func (g *PasswordGuesses) Succeeded(ctx context.Context, account, client string) error {
	for _, s := range g.subjects(account, client) {
		if _, err := g.cfg.DB.ExecContext(ctx, g.queries.giveBack[s.free], s.key); err != nil {
			return fmt.Errorf("take back a password check: %w", err)
		}
	}
	return nil
}
