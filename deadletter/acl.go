package deadletter

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// aclLua defines, for the scripts that start with it, denied(cmd, args…):
// nil when the user running the script may run cmd with these arguments
// (command and keys, as redis.acl_check_cmd checks them), else a NOPERM
// error reply. Scripts call it for every command they will write with,
// before their first write: a Lua script is not rolled back, so a command
// refused after a write would leave that write behind. The key names need
// not be the script's KEYS: acl_check_cmd reads no key, so it may check a
// key of another cluster slot.
//
// redis.acl_check_cmd exists since Redis 7.0. On older servers denied
// allows everything; callers that must not write partially there check
// has_acl_check first.
const aclLua = `
local has_acl_check = redis.acl_check_cmd ~= nil
local function denied(...)
	if has_acl_check and not redis.acl_check_cmd(...) then
		local a = {...}
		return redis.error_reply('NOPERM midstream: this user may not run ' .. a[1] ..
			' on key ' .. a[2] .. ' (checked before writing: nothing was written)')
	end
	return nil
end
`

// aclScript checks that the user may run the given commands, for the paths
// that write with several commands: it writes nothing.
//
//	KEYS[1] a key of the slot to run on (not read)
//	ARGV    the commands: each as its argument count, then the command
//	        name and its arguments
//
// It returns 1, or the NOPERM error of denied for the first refused
// command. Before Redis 7.0 it returns 1 without checking.
var aclScript = redis.NewScript(aclLua + `
local i = 1
while i <= #ARGV do
	local n = tonumber(ARGV[i])
	local e = denied(unpack(ARGV, i + 1, i + n))
	if e then
		return e
	end
	i = i + n + 1
end
return 1
`)

// checkACL runs aclScript in routeKey's slot for the commands cmds, each a
// command name and its arguments.
func checkACL(ctx context.Context, c redis.UniversalClient, routeKey string, cmds ...[]any) error {
	var argv []any
	for _, cmd := range cmds {
		argv = append(argv, len(cmd))
		argv = append(argv, cmd...)
	}
	return aclScript.Run(ctx, c, []string{routeKey}, argv...).Err()
}
