package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Follow makes user follow target. It adds target to user's following set
// and user to target's followers set: two single-key commands, each
// idempotent, so Follow works on a Redis Cluster and a Follow that failed
// half way is completed by calling it again. The followers set is written
// first, so a half-done Follow shows nothing in Read.
//
// Under fan-out on write, only activities appended afterwards reach user's
// timeline, unless WithBackfill is set: Follow then also copies up to that
// many of target's latest activities (found within the scan budget, newest
// first) into user's timeline, the way FanOut copies.
func (f *Feed) Follow(ctx context.Context, user, target string) error {
	if err := errors.Join(checkUser(user), checkUser(target)); err != nil {
		return err
	}
	if err := f.client.SAdd(ctx, FollowersKey(target), user).Err(); err != nil {
		return fmt.Errorf("feed: follow %s -> %s: %w", user, target, err)
	}
	if err := f.client.SAdd(ctx, FollowingKey(user), target).Err(); err != nil {
		return fmt.Errorf("feed: follow %s -> %s: %w", user, target, err)
	}
	if f.cfg.fanOutMaxLen > 0 && f.cfg.backfill > 0 {
		return f.backfillFrom(ctx, user, target)
	}
	return nil
}

// Unfollow makes user stop following target. Read and Live stop showing
// target's activities at once, past ones included. Like Follow it is two
// idempotent single-key commands; the following set is updated first.
func (f *Feed) Unfollow(ctx context.Context, user, target string) error {
	if err := errors.Join(checkUser(user), checkUser(target)); err != nil {
		return err
	}
	if err := f.client.SRem(ctx, FollowingKey(user), target).Err(); err != nil {
		return fmt.Errorf("feed: unfollow %s -> %s: %w", user, target, err)
	}
	if err := f.client.SRem(ctx, FollowersKey(target), user).Err(); err != nil {
		return fmt.Errorf("feed: unfollow %s -> %s: %w", user, target, err)
	}
	return nil
}

// Following returns the users user follows, sorted.
func (f *Feed) Following(ctx context.Context, user string) ([]string, error) {
	return f.members(ctx, "following", user, FollowingKey(user))
}

// Followers returns the users who follow user, sorted.
func (f *Feed) Followers(ctx context.Context, user string) ([]string, error) {
	return f.members(ctx, "followers", user, FollowersKey(user))
}

func (f *Feed) members(ctx context.Context, what, user, key string) ([]string, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	m, err := f.client.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("feed: %s of %s: %w", what, user, err)
	}
	slices.Sort(m)
	return m, nil
}

// backfillFrom copies target's latest activities (up to the backfill
// count, within the scan budget) into user's timeline, oldest first.
func (f *Feed) backfillFrom(ctx context.Context, user, target string) error {
	var calls []copyCall
	end := "+"
	for scanned := int64(0); scanned < f.cfg.budget && int64(len(calls)) < f.cfg.backfill; {
		chunk := min(max(f.cfg.backfill, 100), f.cfg.budget-scanned)
		msgs, err := f.client.XRevRangeN(ctx, f.cfg.stream, end, "-", chunk).Result()
		if err != nil {
			return fmt.Errorf("feed: backfill %s from %s: %w", user, target, err)
		}
		for _, m := range msgs {
			scanned++
			end = "(" + m.ID
			e := toEntry(f.cfg.stream, m)
			if e.Fields[FieldActor] == target && int64(len(calls)) < f.cfg.backfill {
				calls = append(calls, copyCall{user: user, id: m.ID, fields: pairs(e.Fields)})
			}
		}
		if int64(len(msgs)) < chunk {
			break
		}
	}
	slices.Reverse(calls)
	fe := &FanOutError{}
	if err := f.copy(ctx, calls, fe); err != nil {
		return err
	}
	if fe.Count > 0 {
		return fmt.Errorf("feed: backfill %s from %s: %w", user, target, fe)
	}
	return nil
}
