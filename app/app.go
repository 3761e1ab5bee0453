// Package app gathers onboard's use cases.
package app

import (
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
)

// Application is what the ports call.
type Application struct {
	Commands Commands
	Queries  Queries
}

// Commands are the write-side use cases.
type Commands struct {
	RegisterUser             *command.RegisterUserHandler
	VerifyEmail              *command.VerifyEmailHandler
	RequestVerificationEmail *command.RequestVerificationEmailHandler
	ChangeEmail              *command.ChangeEmailHandler
	SignIn                   *command.SignInHandler
	SignOut                  *command.SignOutHandler
	RequestPasswordReset     *command.RequestPasswordResetHandler
	ResetPassword            *command.ResetPasswordHandler
	EraseUser                *command.EraseUserHandler
}

// Queries are the read-side use cases.
type Queries struct {
	UserByID      query.UserByIDHandler
	UserByEmail   query.UserByEmailHandler
	PointsBalance query.PointsBalanceHandler
	SessionUser   query.SessionUserHandler
	ExportUser    query.ExportUserHandler
}
