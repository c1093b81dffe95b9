// Package userapi implements the UserService gRPC API over the store: it
// converts between protobuf and domain types, maps domain and store errors
// to gRPC codes, and streams activity events. It never talks SQL and never
// decides a business rule itself.
package userapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/msctl/msctl/services/kit/paging"
	"github.com/msctl/msctl/services/kit/storage"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/internal/domain"
	"github.com/msctl/msctl/services/user/internal/store"
)

// Server is the UserService implementation.
type Server struct {
	userv1.UnimplementedUserServiceServer
	// store is the open store; the kit's chain lets no call through
	// before the database is open.
	store  func() store.Store
	logger *slog.Logger
	// Poll is how often streams look for events written by other replicas;
	// writes through this replica wake them at once.
	poll    time.Duration
	wake    *broadcast
	closing chan struct{}
	once    sync.Once
	now     func() time.Time
}

// New returns a Server over the store s returns.
func New(s func() store.Store, logger *slog.Logger, poll time.Duration) *Server {
	return &Server{store: s, logger: logger, poll: poll, wake: newBroadcast(), closing: make(chan struct{}), now: time.Now}
}

// Drain ends open activity streams (telling clients to resume elsewhere
// with after_id), so a graceful stop is not held up by subscribers that
// never hang up.
func (s *Server) Drain() { s.once.Do(func() { close(s.closing) }) }

// apiError maps domain and store errors to statuses with clear messages;
// anything unexpected is logged here and reported without internals.
func (s *Server) apiError(ctx context.Context, err error) error {
	var ve *domain.ValidationError
	var te *domain.TransitionError
	switch {
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, ve.Error())
	case errors.As(err, &te):
		return status.Error(codes.FailedPrecondition, te.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "user not found")
	case errors.Is(err, store.ErrEmailTaken):
		return status.Error(codes.AlreadyExists, "a user with this email already exists")
	case errors.Is(err, store.ErrVersionConflict):
		return status.Error(codes.Aborted, "the user was changed since you read it: get it again and retry with its version")
	}
	return storage.APIError(ctx, s.logger, "storage error", err, "storage is unavailable, retry later")
}

// GetUser implements UserService.
func (s *Server) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.User, error) {
	u, err := s.store().Get(ctx, req.GetId())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ToProto(u), nil
}

// CreateUser implements UserService.
func (s *Server) CreateUser(ctx context.Context, req *userv1.CreateUserRequest) (*userv1.User, error) {
	prefs := domain.DefaultPreferences()
	if p := req.GetPreferences(); p != nil {
		prefs = domain.Preferences{EmailNotifications: p.GetEmailNotifications(), Timezone: p.GetTimezone(), Language: p.GetLanguage()}
	}
	u, err := domain.NewUser(req.GetEmail(), req.GetFullName(), prefs, s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	if err := s.store().Create(ctx, u); err != nil {
		return nil, s.apiError(ctx, err)
	}
	s.wake.notify()
	return ToProto(u), nil
}

// UpdateUser implements UserService.
func (s *Server) UpdateUser(ctx context.Context, req *userv1.UpdateUserRequest) (*userv1.User, error) {
	cur, err := s.store().Get(ctx, req.GetId())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	if cur.Version != req.GetExpectedVersion() {
		return nil, status.Errorf(codes.Aborted, "stale version: expected_version is %d but the user is at version %d",
			req.GetExpectedVersion(), cur.Version)
	}
	var p domain.Patch
	p.Email, p.FullName = req.Email, req.FullName
	if req.GetStatus() != userv1.Status_STATUS_UNSPECIFIED {
		st := fromProtoStatus(req.GetStatus())
		p.Status = &st
	}
	if pp := req.GetPreferences(); pp != nil {
		p.EmailNotifications, p.Timezone, p.Language = pp.EmailNotifications, pp.Timezone, pp.Language
	}
	next, err := cur.Apply(p, s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	if err := s.store().Update(ctx, next, cur.Version); err != nil {
		return nil, s.apiError(ctx, err)
	}
	s.wake.notify()
	return ToProto(next), nil
}

// DeleteUser implements UserService.
func (s *Server) DeleteUser(ctx context.Context, req *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
	if _, err := s.store().Delete(ctx, req.GetId(), req.GetExpectedVersion()); err != nil {
		return nil, s.apiError(ctx, err)
	}
	s.wake.notify()
	return &userv1.DeleteUserResponse{}, nil
}

// usersCursor pages ListUsers.
var usersCursor = paging.Cursor{Prefix: "u1:", Method: "ListUsers", Valid: userv1.ValidID}

// ListUsers implements UserService.
func (s *Server) ListUsers(ctx context.Context, req *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
	after, err := usersCursor.After(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := paging.Size(req.GetPageSize())
	q := store.ListQuery{After: after, Limit: size + 1} // one extra says whether a next page exists
	if req.GetStatus() != userv1.Status_STATUS_UNSPECIFIED {
		q.Status = fromProtoStatus(req.GetStatus())
	}
	users, err := s.store().List(ctx, q)
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	resp := &userv1.ListUsersResponse{}
	users, resp.NextPageToken = paging.Page(usersCursor, users, size, func(u domain.User) string { return u.ID })
	for _, u := range users {
		resp.Users = append(resp.Users, ToProto(u))
	}
	return resp, nil
}

// streamBatch is how many events one poll reads.
const streamBatch = 100

// StreamUserActivity implements UserService: stored events first, then
// live ones, each exactly once, in commit order.
func (s *Server) StreamUserActivity(req *userv1.StreamUserActivityRequest, stream userv1.UserService_StreamUserActivityServer) error {
	ctx := stream.Context()
	q := store.EventQuery{AfterID: req.GetAfterId(), UserID: req.GetUserId(), Limit: streamBatch}
	if req.Since != nil {
		q.Since = req.GetSince().AsTime()
	} else if q.AfterID == 0 {
		last, err := s.store().LastEventID(ctx) // "from now on"
		if err != nil {
			return s.apiError(ctx, err)
		}
		q.AfterID = last
	}
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	for {
		// Take the wake-up channel before reading, so a write that commits
		// between the read and the wait still wakes us.
		woken := s.wake.wait()
		evs, err := s.store().Events(ctx, q)
		if err != nil {
			return s.apiError(ctx, err)
		}
		for _, e := range evs {
			if err := stream.Send(EventToProto(e)); err != nil {
				return err
			}
			q.AfterID = e.ID
		}
		if len(evs) == streamBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.closing:
			return status.Errorf(codes.Unavailable, "server shutting down: reconnect with after_id=%d", q.AfterID)
		case <-woken:
		case <-ticker.C:
		}
	}
}

// broadcast wakes every waiter at once: notify closes the current channel
// and starts a new one.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

var toStatus = map[domain.Status]userv1.Status{
	domain.Active:    userv1.Status_STATUS_ACTIVE,
	domain.Inactive:  userv1.Status_STATUS_INACTIVE,
	domain.Suspended: userv1.Status_STATUS_SUSPENDED,
}

func fromProtoStatus(s userv1.Status) domain.Status {
	for d, p := range toStatus {
		if p == s {
			return d
		}
	}
	return domain.Status(strings.ToLower(s.String())) // unknown: the domain rejects it
}

// ToProto converts a domain user.
func ToProto(u domain.User) *userv1.User {
	return &userv1.User{
		Id: u.ID, Email: u.Email, FullName: u.FullName, Status: toStatus[u.Status],
		Preferences: &userv1.Preferences{
			EmailNotifications: u.Preferences.EmailNotifications,
			Timezone:           u.Preferences.Timezone,
			Language:           u.Preferences.Language,
		},
		Version:    u.Version,
		CreateTime: timestamppb.New(u.CreatedAt),
		UpdateTime: timestamppb.New(u.UpdatedAt),
	}
}

var toKind = map[domain.EventKind]userv1.EventKind{
	domain.Created: userv1.EventKind_EVENT_KIND_CREATED,
	domain.Updated: userv1.EventKind_EVENT_KIND_UPDATED,
	domain.Deleted: userv1.EventKind_EVENT_KIND_DELETED,
}

// EventToProto converts a domain event.
func EventToProto(e domain.Event) *userv1.UserEvent {
	return &userv1.UserEvent{Id: e.ID, Kind: toKind[e.Kind], UserId: e.UserID, OccurTime: timestamppb.New(e.OccurredAt), User: ToProto(e.User)}
}
