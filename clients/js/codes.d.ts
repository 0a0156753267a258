// Generated from codes.js's JSDoc by `npm run types` (scripts/emit-types.mjs); do not edit.
export const ERRORS: Readonly<{
    malformed: {
        retry: boolean;
        description: string;
    };
    frame_too_large: {
        retry: boolean;
        description: string;
    };
    unknown_op: {
        retry: boolean;
        description: string;
    };
    invalid_field: {
        retry: boolean;
        description: string;
    };
    text_too_long: {
        retry: boolean;
        description: string;
    };
    empty_text: {
        retry: boolean;
        description: string;
    };
    rate_limited: {
        retry: boolean;
        description: string;
    };
    room_rate_limited: {
        retry: boolean;
        description: string;
    };
    slow_mode: {
        retry: boolean;
        description: string;
    };
    danmaku_paused: {
        retry: boolean;
        description: string;
    };
    muted: {
        retry: boolean;
        description: string;
    };
    banned: {
        retry: boolean;
        description: string;
    };
    unauthorized: {
        retry: boolean;
        description: string;
    };
    forbidden: {
        retry: boolean;
        description: string;
    };
    not_joined: {
        retry: boolean;
        description: string;
    };
    already_joined: {
        retry: boolean;
        description: string;
    };
    room_not_found: {
        retry: boolean;
        description: string;
    };
    anonymous_not_allowed: {
        retry: boolean;
        description: string;
    };
    text_refused: {
        retry: boolean;
        description: string;
    };
    links_not_allowed: {
        retry: boolean;
        description: string;
    };
    duplicate_text: {
        retry: boolean;
        description: string;
    };
    name_reserved: {
        retry: boolean;
        description: string;
    };
    invalid_vote: {
        retry: boolean;
        description: string;
    };
    unknown_option: {
        retry: boolean;
        description: string;
    };
    unknown_target: {
        retry: boolean;
        description: string;
    };
    not_open: {
        retry: boolean;
        description: string;
    };
    illegal_transition: {
        retry: boolean;
        description: string;
    };
    too_few_picks: {
        retry: boolean;
        description: string;
    };
    too_many_picks: {
        retry: boolean;
        description: string;
    };
    out_of_stock: {
        retry: boolean;
        description: string;
    };
    already_done: {
        retry: boolean;
        description: string;
    };
    not_eligible: {
        retry: boolean;
        description: string;
    };
    no_entrants: {
        retry: boolean;
        description: string;
    };
    limit_reached: {
        retry: boolean;
        description: string;
    };
    store_unavailable: {
        retry: boolean;
        description: string;
    };
    internal_error: {
        retry: boolean;
        description: string;
    };
}>;
export const CLOSES: Readonly<{
    normal: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    protocol_error: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    unsupported_data: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    invalid_payload: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    message_too_big: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    internal_error: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    server_restart: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    join_timeout: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    banned: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    room_deleted: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    token_expired: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    token_revoked: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    too_slow: {
        code: number;
        reconnect: boolean;
        description: string;
    };
    heartbeat_timeout: {
        code: number;
        reconnect: boolean;
        description: string;
    };
}>;
/** Close code number -> entry of CLOSES (with its name). */
export const CLOSE_BY_CODE: Readonly<{
    [k: string]: {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    } | {
        code: number;
        reconnect: boolean;
        description: string;
        name: string;
    };
}>;
