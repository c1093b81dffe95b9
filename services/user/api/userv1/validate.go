package userv1

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Shape checks run by the kit's validation interceptor before a handler.
// Business rules (email format, time zones, status transitions) live in
// the service's domain package; these only reject requests that cannot
// mean anything.

// MaxPageSize is the largest ListUsers page.
const MaxPageSize = 500

// ValidID checks a user id is a UUID in canonical form.
func ValidID(id string) error {
	if id == "" {
		return errors.New("id: is required")
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return fmt.Errorf("id: %q is not a UUID like 0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", truncate(id))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Validate implements the kit's validator.
func (r *GetUserRequest) Validate() error { return ValidID(r.GetId()) }

// Validate implements the kit's validator.
func (r *CreateUserRequest) Validate() error {
	if r.GetEmail() == "" {
		return errors.New("email: is required")
	}
	if r.GetFullName() == "" {
		return errors.New("full_name: is required")
	}
	return nil
}

// Validate implements the kit's validator.
func (r *UpdateUserRequest) Validate() error {
	if err := ValidID(r.GetId()); err != nil {
		return err
	}
	if r.GetExpectedVersion() < 1 {
		return errors.New("expected_version: is required (the version you read)")
	}
	if _, ok := Status_name[int32(r.GetStatus())]; !ok {
		return fmt.Errorf("status: %d is not a known status", r.GetStatus())
	}
	return nil
}

// Validate implements the kit's validator.
func (r *DeleteUserRequest) Validate() error {
	if err := ValidID(r.GetId()); err != nil {
		return err
	}
	if r.GetExpectedVersion() < 0 {
		return errors.New("expected_version: must not be negative")
	}
	return nil
}

// Validate implements the kit's validator.
func (r *ListUsersRequest) Validate() error {
	if r.GetPageSize() < 0 || r.GetPageSize() > MaxPageSize {
		return fmt.Errorf("page_size: %d is outside [0, %d]", r.GetPageSize(), MaxPageSize)
	}
	if _, ok := Status_name[int32(r.GetStatus())]; !ok {
		return fmt.Errorf("status: %d is not a known status", r.GetStatus())
	}
	return nil
}

// Validate implements the kit's validator.
func (r *StreamUserActivityRequest) Validate() error {
	if r.GetAfterId() < 0 {
		return errors.New("after_id: must not be negative")
	}
	if r.GetUserId() != "" {
		if err := ValidID(r.GetUserId()); err != nil {
			return fmt.Errorf("user_%w", err)
		}
	}
	if r.Since != nil {
		if err := r.Since.CheckValid(); err != nil {
			return fmt.Errorf("since: %w", err)
		}
	}
	return nil
}
