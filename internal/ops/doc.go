// Package ops holds what the midstream command and the dashboard package
// ask Redis: the streams matching a pattern and their health, one stream's
// groups, consumers and trim preview, a group's pending entries, single
// entries, dead letters (select, redrive, delete) and a gap-free tail. Both
// print the same values, so the types here carry the JSON field names the
// command documents; a name changes here or nowhere.
//
// Every function takes the caller's client and never closes it, honours
// ctx, and bounds what it reads by a limit its caller passes.
package ops
