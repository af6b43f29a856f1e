CREATE TABLE IF NOT EXISTS `session_message` (
    `id` text PRIMARY KEY,
    `session_id` text NOT NULL,
    `type` text NOT NULL,
    `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL,
    `data` text NOT NULL
);
CREATE INDEX IF NOT EXISTS `session_message_session_idx` ON `session_message` (`session_id`);
