package ports

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
)

type eraseUserRequest struct {
	Password *string `json:"password"`
}

// eraseUser is DELETE /users/{id}: the user, with its session and its
// password again, or the operator, with the ADMIN_TOKEN and no body,
// erases the user; 204. Its key is destroyed, so the personal data of its
// events no longer opens anywhere.
func (s HTTPServer) eraseUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	cmd := command.EraseUser{UserID: id, Client: clientOf(c)}
	if _, bySession := c.Get(sessionKey); bySession {
		if !requireJSON(c) {
			return
		}
		var req eraseUserRequest
		if !decodeJSON(c, &req) {
			return
		}
		if missing := missingFields(map[string]*string{"password": req.Password}); len(missing) > 0 {
			writeError(c, http.StatusUnprocessableEntity, "validation-failed", "some fields are invalid", missing)
			return
		}
		cmd.Password = *req.Password
	} else {
		cmd.ByOperator = true
	}
	if err := s.app.Commands.EraseUser.Handle(c.Request.Context(), cmd); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type exportResponse struct {
	User   userResponse    `json:"user"`
	Points pointsResponse  `json:"points"`
	Events []exportedEvent `json:"events"`
}

type exportedEvent struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	StreamVersion int             `json:"stream_version"`
	SchemaVersion int             `json:"schema_version"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data"`
}

// exportUser is GET /users/{id}/export (GDPR art. 15 and 20): the user,
// its points and every event of its stream, decrypted, as JSON.
func (s HTTPServer) exportUser(c *gin.Context) {
	id, ok := userID(c)
	if !ok {
		return
	}
	export, err := s.app.Queries.ExportUser.Handle(c.Request.Context(), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	doc, err := MarshalUserExport(export)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Disposition", `attachment; filename="user-`+id+`.json"`)
	c.Data(http.StatusOK, "application/json; charset=utf-8", doc)
}

// MarshalUserExport is the JSON document of a user's export, as GET
// /users/{id}/export and `onboard users export` give it.
func MarshalUserExport(export query.UserExport) ([]byte, error) {
	doc := exportResponse{User: responseOf(export.User), Events: make([]exportedEvent, len(export.Events)),
		Points: pointsResponse{UserID: export.Points.UserID, Balance: export.Points.Balance, Entries: export.Points.Entries}}
	for i, e := range export.Events {
		data, err := json.Marshal(e.Event)
		if err != nil {
			return nil, err
		}
		doc.Events[i] = exportedEvent{ID: e.ID, Type: e.Type, StreamVersion: e.StreamVersion,
			SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt.UTC(), Data: data}
	}
	return json.MarshalIndent(doc, "", "  ")
}
