-- Whether a staff member has a private chat with the bot (they wrote to it there): a
-- refused form goes back to them there, ready to fix (SPEC §3).
ALTER TABLE people ADD COLUMN private_chat INTEGER NOT NULL DEFAULT 0;
