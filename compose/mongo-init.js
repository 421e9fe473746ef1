/* SPDX-License-Identifier: Apache-2.0 */
// compose/mongo-init.js — run once by the official mongo image's entrypoint
// (mounted in /docker-entrypoint-initdb.d/), on an empty data volume, as the
// root user made from MONGO_INITDB_ROOT_USERNAME / _PASSWORD_FILE, before
// mongod starts with --auth and the replica set's keyFile. Creates user
// smpost, the one command-api logs in as (the secret command_event_store
// holds its URI): readWrite on database socialMedia and nothing else: no
// other database, no user or role administration, no cluster actions.
// Its password comes from the secret mongo_smpost_password (never from the
// environment). A changed password needs db.changeUserPassword by hand: this
// script does not run again on an existing volume.
const pwd = require('fs').readFileSync('/run/secrets/mongo_smpost_password', 'utf8').trim();
if (pwd.length < 16) {
  throw new Error('the secret mongo_smpost_password is shorter than 16 characters');
}
db.getSiblingDB('socialMedia').createUser({
  user: 'smpost',
  pwd: pwd,
  roles: [{ role: 'readWrite', db: 'socialMedia' }],
});
print('created user smpost (readWrite on socialMedia)');
