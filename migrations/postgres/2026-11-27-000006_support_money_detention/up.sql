-- Support networks and referrals, detention follow-up, repatriation and
-- return, and the financial assistance ledger with its exchange rates.
-- Money is never a float: amounts are integers in the currency's minor unit
-- (cents, or yen, or fils) and exchange rates are integers in billionths.

CREATE TABLE organisations (
    id                   UUID PRIMARY KEY,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('legal_aid', 'ngo', 'shelter', 'hospital', 'local_authority', 'international_organisation', 'other')),
    country_code         TEXT NOT NULL REFERENCES countries (alpha2),
    city                 TEXT,
    address              TEXT,
    -- JSON arrays: attention categories it helps with, ISO 639-1 languages
    attention_categories TEXT NOT NULL,
    languages            TEXT NOT NULL,
    contact_name         TEXT,
    email                TEXT,
    phone                TEXT,
    website              TEXT,
    notes                TEXT,
    -- folded name and city, for ?q= on both backends alike
    search_key           TEXT NOT NULL,
    -- readable by every consulate, not only the ones it serves
    public               BOOLEAN NOT NULL,
    active               BOOLEAN NOT NULL,
    -- stale in listings when older than 12 months (or never verified)
    verified_at          TIMESTAMPTZ,
    verified_by          UUID REFERENCES users (id),
    version              INTEGER NOT NULL,
    created_by           UUID REFERENCES users (id),
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
-- GET /organisations?country= ; stale sweep by verified_at
CREATE INDEX organisations_country_idx ON organisations (country_code, name);

-- The consulates an organisation serves (whose supervisors maintain it).
CREATE TABLE organisation_consulates (
    organisation_id UUID NOT NULL REFERENCES organisations (id),
    consulate_id    UUID NOT NULL REFERENCES consulates (id),
    PRIMARY KEY (organisation_id, consulate_id)
);
-- GET /organisations as an officer: the ones serving my consulate
CREATE INDEX organisation_consulates_consulate_idx ON organisation_consulates (consulate_id);

CREATE TABLE referrals (
    id              UUID PRIMARY KEY,
    case_id         UUID NOT NULL REFERENCES cases (id),
    person_id       UUID NOT NULL REFERENCES persons (id),
    consulate_id    UUID NOT NULL REFERENCES consulates (id),
    organisation_id UUID NOT NULL REFERENCES organisations (id),
    reason          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('sent', 'accepted', 'declined', 'completed')),
    sent_on         DATE NOT NULL,
    responded_on    DATE,
    completed_on    DATE,
    outcome         TEXT,
    created_by      UUID REFERENCES users (id),
    version         INTEGER NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX referrals_case_idx ON referrals (case_id);
-- operational figures: referrals per consulate and period
CREATE INDEX referrals_consulate_idx ON referrals (consulate_id, sent_on);
CREATE INDEX referrals_organisation_idx ON referrals (organisation_id);

-- At most one detention record per case.
CREATE TABLE detentions (
    id                 UUID PRIMARY KEY,
    case_id            UUID NOT NULL UNIQUE REFERENCES cases (id),
    person_id          UUID NOT NULL REFERENCES persons (id),
    consulate_id       UUID NOT NULL REFERENCES consulates (id),
    place              TEXT NOT NULL,
    place_city         TEXT,
    arrested_on        DATE NOT NULL,
    notified_at        TIMESTAMPTZ NOT NULL,
    -- a breach when more than 24 hours after notified_at
    first_contact_at   TIMESTAMPTZ,
    legal_situation    TEXT NOT NULL CHECK (legal_situation IN ('arrested', 'pre_trial_detention', 'on_trial', 'sentenced', 'appeal', 'released', 'deported')),
    charges            TEXT,
    lawyer_kind        TEXT NOT NULL CHECK (lawyer_kind IN ('none', 'public_defender', 'private', 'pro_bono')),
    lawyer_name        TEXT,
    lawyer_contact     TEXT,
    next_visit_due     DATE,
    next_visit_task_id UUID REFERENCES tasks (id),
    last_visit_at      TIMESTAMPTZ,
    released_on        DATE,
    version            INTEGER NOT NULL,
    created_by         UUID REFERENCES users (id),
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
-- GET /detentions: detainees per consulate still held
CREATE INDEX detentions_consulate_idx ON detentions (consulate_id, released_on);

CREATE TABLE detention_visits (
    id           UUID PRIMARY KEY,
    detention_id UUID NOT NULL REFERENCES detentions (id),
    visited_at   TIMESTAMPTZ NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('in_person', 'phone', 'video')),
    visitor_id   UUID REFERENCES users (id),
    notes        TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX detention_visits_detention_idx ON detention_visits (detention_id, visited_at);

CREATE TABLE detention_hearings (
    id              UUID PRIMARY KEY,
    detention_id    UUID NOT NULL REFERENCES detentions (id),
    held_on         DATE NOT NULL,
    court           TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    next_hearing_on DATE,
    notes           TEXT,
    recorded_by     UUID REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX detention_hearings_detention_idx ON detention_hearings (detention_id, held_on);

CREATE TABLE repatriations (
    id                    UUID PRIMARY KEY,
    case_id               UUID NOT NULL REFERENCES cases (id),
    person_id             UUID NOT NULL REFERENCES persons (id),
    consulate_id          UUID NOT NULL REFERENCES consulates (id),
    kind                  TEXT NOT NULL CHECK (kind IN ('repatriation', 'return_assistance', 'remains_transfer')),
    status                TEXT NOT NULL CHECK (status IN ('planned', 'in_progress', 'completed', 'cancelled')),
    destination           TEXT NOT NULL,
    planned_on            DATE,
    return_date           DATE,
    -- Tarjeta del Migrante Retornado (return assistance only)
    migrant_card_issued   BOOLEAN NOT NULL,
    migrant_card_issued_on DATE,
    notes                 TEXT,
    version               INTEGER NOT NULL,
    created_by            UUID REFERENCES users (id),
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX repatriations_case_idx ON repatriations (case_id);
CREATE INDEX repatriations_consulate_idx ON repatriations (consulate_id, status);

CREATE TABLE repatriation_steps (
    id              UUID PRIMARY KEY,
    repatriation_id UUID NOT NULL REFERENCES repatriations (id),
    step            TEXT NOT NULL,
    position        INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'done', 'not_needed')),
    done_on         DATE,
    notes           TEXT,
    decided_by      UUID REFERENCES users (id),
    decided_at      TIMESTAMPTZ,
    UNIQUE (repatriation_id, step)
);

-- Units of a currency in PEN and in USD on a day, in billionths.
CREATE TABLE exchange_rates (
    currency        TEXT NOT NULL,
    rate_date       DATE NOT NULL,
    pen_per_unit_e9 BIGINT NOT NULL CHECK (pen_per_unit_e9 > 0),
    usd_per_unit_e9 BIGINT NOT NULL CHECK (usd_per_unit_e9 > 0),
    source          TEXT NOT NULL,
    recorded_by     UUID REFERENCES users (id),
    recorded_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (currency, rate_date)
);

-- The financial assistance ledger. A paid entry is never changed; a
-- correction is a new entry with the opposite amounts that names it in
-- reverses_id (status `reversed`).
CREATE TABLE payments (
    id                UUID PRIMARY KEY,
    case_id           UUID NOT NULL REFERENCES cases (id),
    person_id         UUID NOT NULL REFERENCES persons (id),
    consulate_id      UUID NOT NULL REFERENCES consulates (id),
    repatriation_id   UUID REFERENCES repatriations (id),
    kind              TEXT NOT NULL CHECK (kind IN ('economic_subsidy', 'consular_fees_destitute', 'detainee_help', 'repatriation_cost', 'other')),
    status            TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected', 'paid', 'reversed')),
    -- in the currency's minor unit; negative only on a reversal entry
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    currency_exponent INTEGER NOT NULL,
    -- the day the rates are taken from
    value_date        DATE NOT NULL,
    pen_per_unit_e9   BIGINT NOT NULL,
    usd_per_unit_e9   BIGINT NOT NULL,
    -- the amount in PEN and USD cents, rounded once per entry
    amount_pen_cents  BIGINT NOT NULL,
    amount_usd_cents  BIGINT NOT NULL,
    budget_line       TEXT NOT NULL,
    description       TEXT NOT NULL,
    requested_by      UUID NOT NULL REFERENCES users (id),
    requested_at      TIMESTAMPTZ NOT NULL,
    decided_by        UUID REFERENCES users (id),
    decided_at        TIMESTAMPTZ,
    decision_note     TEXT,
    paid_by           UUID REFERENCES users (id),
    paid_at           TIMESTAMPTZ,
    payment_reference TEXT,
    reverses_id       UUID UNIQUE REFERENCES payments (id),
    version           INTEGER NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    CHECK ((amount_minor > 0) = (reverses_id IS NULL))
);
-- totals per consulate, year, kind and currency
CREATE INDEX payments_consulate_date_idx ON payments (consulate_id, value_date);
CREATE INDEX payments_case_idx ON payments (case_id);
CREATE INDEX payments_repatriation_idx ON payments (repatriation_id);
