"""Versioned schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "event log, sources, tokens, identity, profiles",
        """
        CREATE TABLE sources (
            name VARCHAR PRIMARY KEY,
            channel VARCHAR NOT NULL,
            write_key_hash VARCHAR NOT NULL UNIQUE,
            write_key_hint VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            revoked_at TIMESTAMPTZ
        );
        CREATE TABLE tokens (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL,
            role VARCHAR NOT NULL,
            token_hash VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            revoked_at TIMESTAMPTZ
        );
        CREATE TABLE events (
            seq BIGINT NOT NULL,
            message_id VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            event VARCHAR,
            channel VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            anonymous_id VARCHAR,
            user_id VARCHAR,
            group_id VARCHAR,
            previous_id VARCHAR,
            profile_id VARCHAR,
            identifiers VARCHAR[] NOT NULL,
            timestamp TIMESTAMPTZ NOT NULL,
            original_timestamp TIMESTAMPTZ,
            sent_at TIMESTAMPTZ,
            received_at TIMESTAMPTZ NOT NULL,
            properties JSON,
            traits JSON,
            context JSON
        );
        CREATE SEQUENCE failed_events_id START 1;
        CREATE TABLE failed_events (
            id BIGINT PRIMARY KEY DEFAULT nextval('failed_events_id'),
            received_at TIMESTAMPTZ NOT NULL,
            source VARCHAR,
            origin VARCHAR NOT NULL,
            row_number BIGINT,
            message_id VARCHAR,
            payload VARCHAR NOT NULL,
            errors JSON NOT NULL,
            status VARCHAR NOT NULL DEFAULT 'failed',
            replayed_at TIMESTAMPTZ
        );
        CREATE TABLE identities (
            identifier VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            value VARCHAR NOT NULL,
            profile_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            message_id VARCHAR NOT NULL
        );
        CREATE TABLE profile_merges (
            profile_id VARCHAR PRIMARY KEY,
            merged_into VARCHAR NOT NULL,
            canonical_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            message_id VARCHAR NOT NULL,
            identifier VARCHAR NOT NULL
        );
        CREATE TABLE identity_conflicts (
            seq BIGINT NOT NULL,
            message_id VARCHAR NOT NULL,
            identifier VARCHAR NOT NULL,
            profile_id VARCHAR,
            reason VARCHAR NOT NULL
        );
        CREATE TABLE identity_blocks (
            identifier VARCHAR NOT NULL,
            other VARCHAR NOT NULL,
            split_from VARCHAR,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (identifier, other)
        );
        CREATE TABLE profiles (
            profile_id VARCHAR PRIMARY KEY,
            user_id VARCHAR,
            email VARCHAR,
            phone VARCHAR,
            name VARCHAR,
            identifiers VARCHAR[] NOT NULL,
            traits JSON,
            channels VARCHAR[],
            event_count BIGINT NOT NULL,
            first_seen TIMESTAMPTZ,
            last_seen TIMESTAMPTZ,
            refreshed_at TIMESTAMPTZ NOT NULL
        );
        CREATE VIEW resolved_events AS
            SELECT e.*, coalesce(m.canonical_id, e.profile_id) AS person_id
            FROM events e LEFT JOIN profile_merges m ON e.profile_id = m.profile_id;
        """,
    ),
    (
        2,
        "people who sign in, and their sessions",
        """
        CREATE TABLE users (
            email VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL,
            password_hash VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            disabled_at TIMESTAMPTZ
        );
        CREATE TABLE sessions (
            id_hash VARCHAR PRIMARY KEY,
            email VARCHAR NOT NULL,
            csrf VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            expires_at TIMESTAMPTZ NOT NULL
        );
        """,
    ),
    (
        3,
        "analytics views for every engine; documents (touchpoint model, journeys)",
        """
        CREATE VIEW analytics_events AS
            SELECT person_id, seq, message_id, type, event, channel, source,
                   timestamp, CAST(properties AS VARCHAR) AS properties
            FROM resolved_events;
        CREATE VIEW analytics_profiles AS
            SELECT profile_id AS person_id, CAST(traits AS VARCHAR) AS traits
            FROM profiles;
        CREATE TABLE documents (
            kind VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            body VARCHAR NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            updated_by VARCHAR,
            PRIMARY KEY (kind, name)
        );
        """,
    ),
    (
        4,
        "voice of the customer: survey invitations, closed-loop cases",
        """
        CREATE TABLE survey_invitations (
            id VARCHAR PRIMARY KEY,
            token_hash VARCHAR NOT NULL UNIQUE,
            survey_id VARCHAR NOT NULL,
            survey_type VARCHAR,
            person_id VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            touchpoint VARCHAR,
            trigger_message_id VARCHAR,
            created_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL,
            status VARCHAR NOT NULL DEFAULT 'sent',
            answered_at TIMESTAMPTZ,
            score INTEGER
        );
        CREATE SEQUENCE case_number START 1;
        CREATE TABLE cases (
            id VARCHAR PRIMARY KEY,
            person_id VARCHAR NOT NULL,
            source_message_id VARCHAR NOT NULL UNIQUE,
            rule VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            survey_id VARCHAR,
            survey_type VARCHAR,
            score INTEGER,
            comment VARCHAR,
            touchpoint VARCHAR,
            queue VARCHAR NOT NULL,
            owner VARCHAR,
            priority VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            opened_at TIMESTAMPTZ NOT NULL,
            due_at TIMESTAMPTZ NOT NULL,
            first_action_at TIMESTAMPTZ,
            resolved_at TIMESTAMPTZ,
            root_cause VARCHAR,
            follow_up_invitation VARCHAR
        );
        CREATE TABLE case_notes (
            case_id VARCHAR NOT NULL,
            noted_at TIMESTAMPTZ NOT NULL,
            author VARCHAR NOT NULL,
            text VARCHAR NOT NULL
        );
        """,
    ),
    (
        5,
        "segment members, computed traits, decisions, outbox, agent tasks, trigger runs",
        """
        CREATE TABLE segment_members (
            segment VARCHAR NOT NULL,
            person_id VARCHAR NOT NULL,
            refreshed_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (segment, person_id)
        );
        CREATE TABLE computed_traits (
            person_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            value JSON,
            computed_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (person_id, name)
        );
        CREATE TABLE decisions (
            id VARCHAR PRIMARY KEY,
            key VARCHAR NOT NULL,
            decided_at TIMESTAMPTZ NOT NULL,
            person_id VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            trigger VARCHAR,
            cause VARCHAR,
            channel VARCHAR NOT NULL,
            purpose VARCHAR NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            outcome VARCHAR NOT NULL,
            rule VARCHAR,
            hold_until TIMESTAMPTZ,
            reasons JSON NOT NULL,
            outbox_id VARCHAR
        );
        CREATE INDEX decisions_person ON decisions (person_id);
        CREATE INDEX decisions_key ON decisions (key);
        CREATE TABLE outbox (
            id VARCHAR PRIMARY KEY,
            idempotency_key VARCHAR NOT NULL UNIQUE,
            decision_id VARCHAR,
            person_id VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            channel VARCHAR NOT NULL,
            purpose VARCHAR NOT NULL,
            adapter VARCHAR NOT NULL,
            destination VARCHAR,
            payload JSON NOT NULL,
            status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TIMESTAMPTZ NOT NULL,
            last_error VARCHAR,
            created_at TIMESTAMPTZ NOT NULL,
            delivered_at TIMESTAMPTZ
        );
        CREATE INDEX outbox_person ON outbox (person_id);
        CREATE TABLE agent_tasks (
            id VARCHAR PRIMARY KEY,
            person_id VARCHAR NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            title VARCHAR NOT NULL,
            body VARCHAR,
            trigger VARCHAR,
            cause VARCHAR,
            status VARCHAR NOT NULL DEFAULT 'open',
            done_at TIMESTAMPTZ,
            done_by VARCHAR
        );
        CREATE TABLE trigger_runs (
            trigger VARCHAR PRIMARY KEY,
            last_seq BIGINT NOT NULL DEFAULT -1,
            last_run_at TIMESTAMPTZ
        );
        """,
    ),
    (
        6,
        "decisions keep the proposal's time and quiet-hours choice, for releasing holds",
        """
        DROP INDEX decisions_person;
        DROP INDEX decisions_key;
        ALTER TABLE decisions ADD COLUMN proposed_at TIMESTAMPTZ;
        ALTER TABLE decisions ADD COLUMN on_quiet_hours VARCHAR;
        CREATE INDEX decisions_person ON decisions (person_id);
        CREATE INDEX decisions_key ON decisions (key);
        """,
    ),
    (
        7,
        "privacy: suppressions and erasure reports; security: the audit log",
        """
        CREATE TABLE suppressions (
            identifier_hash VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            erasure_id VARCHAR,
            created_at TIMESTAMPTZ NOT NULL,
            created_by VARCHAR NOT NULL,
            dropped BIGINT NOT NULL DEFAULT 0,
            last_dropped_at TIMESTAMPTZ
        );
        CREATE TABLE erasures (
            id VARCHAR PRIMARY KEY,
            requested_at TIMESTAMPTZ NOT NULL,
            requested_by VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            report JSON NOT NULL
        );
        CREATE SEQUENCE audit_log_id START 1;
        CREATE TABLE audit_log (
            id BIGINT PRIMARY KEY DEFAULT nextval('audit_log_id'),
            logged_at TIMESTAMPTZ NOT NULL,
            actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            target_kind VARCHAR,
            target VARCHAR,
            details JSON,
            client VARCHAR
        );
        """,
    ),
)
