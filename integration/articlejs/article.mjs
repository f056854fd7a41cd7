// The article's node-redis code ("Redis Streams — the missing middle ground
// between queues and Kafka"), run from the command line so that the Go
// integration tests can check it against what midstream writes and reads.
//
//   node article.mjs <redis-url> <command> [args...]
//
// The functions are the article's, with two changes: every key and channel
// name starts with $PREFIX (so tests on a shared server do not meet), and
// stream replies are read as node-redis v4 returns them ({id, message}
// objects, where the article destructures [id, data] pairs).
import { createClient } from 'redis';

const prefix = process.env.PREFIX ?? '';
const [url, command, ...args] = process.argv.slice(2);
const client = createClient({ url });
await client.connect();

const pairs = (entries) => entries.map(({ id, message }) => [id, message]);

// Building a Real-Time Activity Feed
async function post(actor, postId) {
  const activityData = { actor, type: 'post', postId, timestamp: Date.now().toString() };
  const id = await client.xAdd(prefix + 'activity', '*', activityData);
  await client.publish(prefix + 'activity:new', JSON.stringify(activityData));
  return id;
}

async function getActivityFeed(userId) {
  const followedUsers = await client.sMembers(`${prefix}user:${userId}:following`);
  // Read last 100 entries and filter
  const entries = pairs(await client.xRevRange(prefix + 'activity', '+', '-', { COUNT: 100 }));
  const feed = entries
    .map(([id, data]) => ({ id, ...data }))
    .filter(({ actor }) => followedUsers.includes(actor));
  return feed;
}

async function listen(count) {
  const subscriber = client.duplicate();
  await subscriber.connect();
  let seen = 0;
  await subscriber.subscribe(prefix + 'activity:new', (message) => {
    const activity = JSON.parse(message);
    console.log(JSON.stringify(activity));
    if (++seen === count) {
      subscriber.quit().then(() => client.quit()).then(() => process.exit(0));
    }
  });
  console.log('ready');
}

// Building a Live Notification System
async function sendNotification(userId, content) {
  const notificationId = await client.xAdd(
    `${prefix}notifications:${userId}`,
    '*',
    { content, read: 'false', createdAt: Date.now().toString() }
  );
  await client.publish(
    `${prefix}notifications:${userId}:live`,
    JSON.stringify({ id: notificationId, content })
  );
  return notificationId;
}

async function markNotificationRead(userId, notificationId) {
  // Notifications are append-only; create a read marker entry
  await client.xAdd(`${prefix}notifications:${userId}`, '*', {
    markedReadId: notificationId,
    readAt: Date.now().toString(),
  });
}

async function getUnreadNotifications(userId) {
  const notifications = pairs(await client.xRevRange(
    `${prefix}notifications:${userId}`, '+', '-', { COUNT: 100 }
  ));
  let readIds = new Set();
  for (const [id, data] of notifications) {
    if (data.markedReadId) {
      readIds.add(data.markedReadId);
    }
  }
  return notifications.filter(([id, data]) => !data.markedReadId && !readIds.has(id));
}

// Numbers: String(Number(s)) of each argument, and random doubles as
// JavaScript writes them.
function numbers(list) {
  return list.map((s) => String(Number(s)));
}

function randomDoubles(n) {
  const buf = new DataView(new ArrayBuffer(8));
  const out = [];
  while (out.length < n) {
    for (let i = 0; i < 8; i++) buf.setUint8(i, Math.floor(Math.random() * 256));
    out.push(String(buf.getFloat64(0)));
    out.push(String((Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 40 - 12)));
  }
  return out;
}

let result;
switch (command) {
  case 'post': result = await post(args[0], args[1]); break;
  case 'feed': result = await getActivityFeed(args[0]); break;
  case 'listen': await listen(Number(args[0])); break;
  case 'send': result = await sendNotification(args[0], args[1]); break;
  case 'mark': result = await markNotificationRead(args[0], args[1]) ?? 'OK'; break;
  case 'unread': result = (await getUnreadNotifications(args[0])).map(([id, data]) => ({ id, ...data })); break;
  case 'numbers': result = numbers(args); break;
  case 'random-doubles': result = randomDoubles(Number(args[0])); break;
  default: console.error(`unknown command ${command}`); process.exit(2);
}
if (command !== 'listen') {
  console.log(JSON.stringify(result));
  await client.quit();
}
