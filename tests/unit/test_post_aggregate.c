/* SPDX-License-Identifier: Apache-2.0 */
/* test_post_aggregate.c — the Post aggregate as a specification: every
 * business rule with its exact text, status and order (docs/api.md,
 * "Business rules"), the events the rules raise, and how post_apply() folds a
 * history into state. Pure: no store, no clock (now_ms is passed in).
 *
 * Most tests start from the same fixture: a post by "alice" with one comment
 * "nice" by "bob" (f->cid), built by deciding events and applying them back,
 * exactly as the command handlers do. */
#include "post.h"
#include "sm_time.h"
#include "sm_uuid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1795734301123LL /* 2026-11-26T23:05:01.123Z */
#define UNKNOWN_ID "00000000-0000-4000-8000-000000000009"
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define MSG_BLANK_AUTHOR \
    "The value of author cannot be null or empty. Please provide a valid author!"
#define MSG_BLANK_MESSAGE \
    "The value of message cannot be null or empty. Please provide a valid message!"
#define MSG_BLANK_COMMENT \
    "The value of comment cannot be null or empty. Please provide a valid comment!"
#define MSG_BLANK_USERNAME \
    "The value of username cannot be null or empty. Please provide a valid username!"
#define MSG_EDIT_INACTIVE "You cannot edit the message of an inactive post!"
#define MSG_LIKE_INACTIVE "You cannot like an inactive post!"
#define MSG_ADD_INACTIVE "You cannot add a comment to an inactive post!"
#define MSG_EDIT_COMMENT_INACTIVE "You cannot edit a comment to an inactive post!"
#define MSG_REMOVE_COMMENT_INACTIVE "You cannot remove a comment from an inactive post!"
#define MSG_NOT_COMMENTER \
    "You are not allowed to edit a comment that was made by another user!"
#define MSG_ALREADY_REMOVED "The post has been already removed!"
#define MSG_NOT_AUTHOR "You are not allowed to delete a post that was made by somebody else!"
#define MSG_UNKNOWN_COMMENT "Comment not found! " UNKNOWN_ID

/* Texts that are blank: NULL, empty, ASCII white space, and Unicode spaces
 * (U+00A0 no-break space, U+3000 ideographic space, U+2003 em space). */
static const char *const blanks[] = {
    NULL, "", " ", "   ", "\t\r\n", "\xc2\xa0", "\xe3\x80\x80", " \xe2\x80\x83\xc2\xa0\t ",
};

/* ---- helpers ------------------------------------------------------------ */

typedef struct fixture {
    post_state p;
    sm_event ev;  /* the event under test; cleared by teardown */
    sm_error err;
    sm_uuid_str cid; /* bob's comment */
} fixture;

/* Folds a decided event back into the state (the handler's "save" step) and
 * clears it. */
static void apply_and_clear(post_state *p, sm_event *ev)
{
    sm_error err = {0};
    assert_int_equal(post_apply(p, ev, &err), SM_OK);
    sm_event_clear(ev);
}

static void create_post_at(post_state *p, const char *author, const char *message, int64_t now)
{
    sm_uuid_str id;
    sm_event ev = {0};
    sm_error err = {0};
    assert_true(sm_uuid_new(id));
    assert_int_equal(post_decide_create(id, author, message, now, &ev, &err), SM_OK);
    apply_and_clear(p, &ev);
}

static void add_comment(post_state *p, const char *text, const char *user, int64_t now,
                        sm_uuid_str id_out)
{
    sm_event ev = {0};
    sm_error err = {0};
    assert_int_equal(post_decide_add_comment(p, text, user, now, &ev, &err), SM_OK);
    memcpy(id_out, ev.comment_id, sizeof(sm_uuid_str));
    apply_and_clear(p, &ev);
}

static void delete_post(post_state *p)
{
    sm_event ev = {0};
    sm_error err = {0};
    assert_int_equal(post_decide_delete(p, p->author, T0, &ev, &err), SM_OK);
    apply_and_clear(p, &ev);
}

static int setup_empty(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    post_init(&f->p);
    *state = f;
    return 0;
}

static int setup_post(void **state)
{
    setup_empty(state);
    fixture *f = *state;
    create_post_at(&f->p, "alice", "hello", T0);
    add_comment(&f->p, "nice", "bob", T0, f->cid);
    return 0;
}

static int setup_deleted_post(void **state)
{
    setup_post(state);
    delete_post(&((fixture *)*state)->p);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sm_event_clear(&f->ev);
    post_free(&f->p);
    free(f);
    return 0;
}

/* The decision was refused with want/text, and no event was raised. */
static void assert_refused(sm_status st, const fixture *f, sm_status want, const char *text)
{
    assert_int_equal(st, want);
    assert_int_equal(f->err.status, want);
    assert_string_equal(f->err.message, text);
    assert_int_equal(f->ev.type, SM_EV_NONE);
    assert_null(f->ev.message);
    assert_null(f->ev.comment);
}

/* `call` (which uses f) is refused with status and text. */
#define REFUSED(call, status, text) assert_refused((call), f, (status), (text))

static bool is_uuid(const char *s)
{
    sm_uuid_str canon;
    return sm_uuid_parse(s, canon) && strcmp(canon, s) == 0;
}

/* What every decided event shares: next version, the post's id, a fresh
 * event id and the caller's clock. */
static void assert_next_event(const post_state *p, const sm_event *ev, sm_event_type type,
                              int64_t now)
{
    assert_int_equal(ev->type, type);
    assert_int_equal(ev->version, p->version + 1);
    assert_string_equal(ev->aggregate_id, p->id);
    assert_true(is_uuid(ev->event_id));
    assert_string_not_equal(ev->event_id, p->id);
    assert_int_equal(ev->timestamp_ms, now);
}

/* ---- NewPost ------------------------------------------------------------- */

static void test_create_raises_post_created_at_version_zero(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    assert_true(sm_uuid_new(id));
    assert_int_equal(post_decide_create(id, "alice", "  hi there  ", T0, &f->ev, &f->err), SM_OK);
    assert_int_equal(f->ev.type, SM_EV_POST_CREATED);
    assert_int_equal(f->ev.version, 0);
    assert_string_equal(f->ev.aggregate_id, id);
    assert_true(is_uuid(f->ev.event_id));
    assert_string_not_equal(f->ev.event_id, id);
    assert_string_equal(f->ev.author, "alice");
    assert_string_equal(f->ev.message, "  hi there  "); /* kept verbatim, not trimmed */
    assert_int_equal(f->ev.timestamp_ms, T0);
    assert_int_equal(f->ev.at_ms, T0);
    apply_and_clear(&f->p, &f->ev);
    assert_true(post_exists(&f->p));
    assert_true(f->p.active);
    assert_int_equal(f->p.version, 0);
    assert_int_equal(f->p.likes, 0);
}

static void test_create_with_blank_author_is_rejected(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < COUNT(blanks); i++)
        REFUSED(post_decide_create(UNKNOWN_ID, blanks[i], "hi", T0, &f->ev, &f->err),
                SM_ERR_RULE, MSG_BLANK_AUTHOR);
}

static void test_create_with_blank_message_is_rejected(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < COUNT(blanks); i++)
        REFUSED(post_decide_create(UNKNOWN_ID, "alice", blanks[i], T0, &f->ev, &f->err),
                SM_ERR_RULE, MSG_BLANK_MESSAGE);
}

static void test_create_checks_author_before_message(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_create(UNKNOWN_ID, " ", " ", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_BLANK_AUTHOR);
}

/* ---- EditMessage ---------------------------------------------------------- */

static void test_edit_message_raises_message_updated_for_anyone(void **state)
{
    /* EditMessage has no user at all: anyone may edit any post. */
    fixture *f = *state;
    assert_int_equal(post_decide_edit_message(&f->p, "edited", T0 + 5, &f->ev, &f->err), SM_OK);
    assert_next_event(&f->p, &f->ev, SM_EV_MESSAGE_UPDATED, T0 + 5);
    assert_string_equal(f->ev.message, "edited");
    apply_and_clear(&f->p, &f->ev);
    assert_string_equal(f->p.message, "edited");
}

static void test_edit_message_on_deleted_post_is_rejected_before_blank_check(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_edit_message(&f->p, "new", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_EDIT_INACTIVE);
    REFUSED(post_decide_edit_message(&f->p, " ", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_EDIT_INACTIVE);
}

static void test_edit_message_with_blank_message_is_rejected(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < COUNT(blanks); i++)
        REFUSED(post_decide_edit_message(&f->p, blanks[i], T0, &f->ev, &f->err), SM_ERR_RULE,
                MSG_BLANK_MESSAGE);
}

/* ---- LikePost -------------------------------------------------------------- */

static void test_like_on_deleted_post_is_rejected(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_like(&f->p, T0, &f->ev, &f->err), SM_ERR_RULE, MSG_LIKE_INACTIVE);
}

static void test_likes_are_unlimited_and_count_up(void **state)
{
    fixture *f = *state;
    int64_t v0 = f->p.version;
    for (int i = 1; i <= 25; i++) {
        assert_int_equal(post_decide_like(&f->p, T0 + i, &f->ev, &f->err), SM_OK);
        assert_next_event(&f->p, &f->ev, SM_EV_POST_LIKED, T0 + i);
        apply_and_clear(&f->p, &f->ev);
        assert_int_equal(f->p.likes, i);
    }
    assert_int_equal(f->p.version, v0 + 25);
}

/* ---- AddComment ------------------------------------------------------------- */

static void test_add_comment_raises_comment_added_with_fresh_comment_id(void **state)
{
    fixture *f = *state;
    sm_event other = {0};
    assert_int_equal(post_decide_add_comment(&f->p, "again", "bob", T0 + 7, &other, &f->err),
                     SM_OK);
    assert_int_equal(post_decide_add_comment(&f->p, "again", "bob", T0 + 7, &f->ev, &f->err),
                     SM_OK);
    assert_next_event(&f->p, &f->ev, SM_EV_COMMENT_ADDED, T0 + 7);
    assert_string_equal(f->ev.comment, "again");
    assert_string_equal(f->ev.username, "bob");
    assert_int_equal(f->ev.at_ms, T0 + 7);
    assert_true(is_uuid(f->ev.comment_id));
    assert_string_not_equal(f->ev.comment_id, f->ev.event_id);
    assert_string_not_equal(f->ev.comment_id, f->p.id);
    assert_string_not_equal(f->ev.comment_id, f->cid); /* not the existing comment's */
    assert_string_not_equal(f->ev.comment_id, other.comment_id);
    assert_string_not_equal(f->ev.event_id, other.event_id);
    sm_event_clear(&other);
    sm_uuid_str id;
    memcpy(id, f->ev.comment_id, sizeof id);
    apply_and_clear(&f->p, &f->ev);
    assert_int_equal(f->p.ncomments, 2);
    assert_ptr_equal(post_find_comment(&f->p, id), &f->p.comments[1]); /* in added order */
}

static void test_add_comment_on_deleted_post_is_rejected_first(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_add_comment(&f->p, "nice", "bob", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_ADD_INACTIVE);
    REFUSED(post_decide_add_comment(&f->p, "", "", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_ADD_INACTIVE);
}

static void test_add_comment_with_blank_comment_is_rejected_before_username(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < COUNT(blanks); i++)
        REFUSED(post_decide_add_comment(&f->p, blanks[i], "bob", T0, &f->ev, &f->err),
                SM_ERR_RULE, MSG_BLANK_COMMENT);
    REFUSED(post_decide_add_comment(&f->p, " ", " ", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_BLANK_COMMENT);
}

static void test_add_comment_with_blank_username_is_rejected(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < COUNT(blanks); i++)
        REFUSED(post_decide_add_comment(&f->p, "nice", blanks[i], T0, &f->ev, &f->err),
                SM_ERR_RULE, MSG_BLANK_USERNAME);
}

/* ---- EditComment ------------------------------------------------------------- */

static void test_edit_comment_by_its_author_raises_comment_updated(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        post_decide_edit_comment(&f->p, f->cid, "better", "bob", T0 + 9, &f->ev, &f->err),
        SM_OK);
    assert_next_event(&f->p, &f->ev, SM_EV_COMMENT_UPDATED, T0 + 9);
    assert_string_equal(f->ev.comment_id, f->cid);
    assert_string_equal(f->ev.comment, "better");
    assert_string_equal(f->ev.username, "bob");
    assert_int_equal(f->ev.at_ms, T0 + 9);
}

static void test_edit_comment_on_deleted_post_is_rejected_first(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_edit_comment(&f->p, f->cid, "x", "bob", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_EDIT_COMMENT_INACTIVE);
    REFUSED(post_decide_edit_comment(&f->p, UNKNOWN_ID, " ", "eve", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_EDIT_COMMENT_INACTIVE);
}

static void test_edit_unknown_comment_is_not_found_before_other_checks(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_edit_comment(&f->p, UNKNOWN_ID, "x", "bob", T0, &f->ev, &f->err),
            SM_ERR_NOT_FOUND, MSG_UNKNOWN_COMMENT);
    REFUSED(post_decide_edit_comment(&f->p, UNKNOWN_ID, " ", "eve", T0, &f->ev, &f->err),
            SM_ERR_NOT_FOUND, MSG_UNKNOWN_COMMENT);
}

static void test_edit_removed_comment_is_not_found(void **state)
{
    fixture *f = *state;
    assert_int_equal(post_decide_remove_comment(&f->p, f->cid, "bob", T0, &f->ev, &f->err),
                     SM_OK);
    apply_and_clear(&f->p, &f->ev);
    char want[80];
    snprintf(want, sizeof want, "Comment not found! %s", f->cid);
    REFUSED(post_decide_edit_comment(&f->p, f->cid, "x", "bob", T0, &f->ev, &f->err),
            SM_ERR_NOT_FOUND, want);
}

static void test_edit_comment_by_another_user_is_rejected_even_the_post_author(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_edit_comment(&f->p, f->cid, "x", "eve", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_NOT_COMMENTER);
    REFUSED(post_decide_edit_comment(&f->p, f->cid, "x", "alice", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_NOT_COMMENTER);
    REFUSED(post_decide_edit_comment(&f->p, f->cid, "x", NULL, T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_NOT_COMMENTER);
    /* ownership is checked before the text */
    REFUSED(post_decide_edit_comment(&f->p, f->cid, " ", "eve", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_NOT_COMMENTER);
}

static void test_edit_comment_username_match_is_case_sensitive(void **state)
{
    fixture *f = *state;
    sm_uuid_str cid;
    add_comment(&f->p, "hi", "Bob", T0, cid);
    REFUSED(post_decide_edit_comment(&f->p, cid, "x", "bob", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_NOT_COMMENTER);
    REFUSED(post_decide_edit_comment(&f->p, cid, "x", "BOB", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_NOT_COMMENTER);
    REFUSED(post_decide_edit_comment(&f->p, f->cid, "x", "Bob", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_NOT_COMMENTER); /* and lower-case bob's is not Bob's */
    assert_int_equal(post_decide_edit_comment(&f->p, cid, "x", "Bob", T0, &f->ev, &f->err),
                     SM_OK);
}

static void test_edit_comment_with_blank_comment_is_rejected(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < COUNT(blanks); i++)
        REFUSED(post_decide_edit_comment(&f->p, f->cid, blanks[i], "bob", T0, &f->ev, &f->err),
                SM_ERR_RULE, MSG_BLANK_COMMENT);
}

/* ---- RemoveComment ---------------------------------------------------------- */

static void test_remove_comment_by_its_author_raises_comment_removed(void **state)
{
    fixture *f = *state;
    assert_int_equal(post_decide_remove_comment(&f->p, f->cid, "bob", T0 + 3, &f->ev, &f->err),
                     SM_OK);
    assert_next_event(&f->p, &f->ev, SM_EV_COMMENT_REMOVED, T0 + 3);
    assert_string_equal(f->ev.comment_id, f->cid);
    apply_and_clear(&f->p, &f->ev);
    assert_int_equal(f->p.ncomments, 0);
    assert_null(post_find_comment(&f->p, f->cid));
}

static void test_remove_comment_on_deleted_post_is_rejected_first(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_remove_comment(&f->p, f->cid, "bob", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_REMOVE_COMMENT_INACTIVE);
    REFUSED(post_decide_remove_comment(&f->p, UNKNOWN_ID, "eve", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_REMOVE_COMMENT_INACTIVE);
}

static void test_remove_unknown_comment_is_not_found(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_remove_comment(&f->p, UNKNOWN_ID, "eve", T0, &f->ev, &f->err),
            SM_ERR_NOT_FOUND, MSG_UNKNOWN_COMMENT);
}

static void test_remove_comment_by_another_user_gets_the_seeds_edit_text(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_remove_comment(&f->p, f->cid, "alice", T0, &f->ev, &f->err),
            SM_ERR_RULE, MSG_NOT_COMMENTER);
    REFUSED(post_decide_remove_comment(&f->p, f->cid, "Bob", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_NOT_COMMENTER);
    assert_int_equal(f->p.ncomments, 1);
}

/* ---- DeletePost --------------------------------------------------------------- */

static void test_delete_by_author_raises_post_removed(void **state)
{
    fixture *f = *state;
    assert_int_equal(post_decide_delete(&f->p, "alice", T0 + 11, &f->ev, &f->err), SM_OK);
    assert_next_event(&f->p, &f->ev, SM_EV_POST_REMOVED, T0 + 11);
    apply_and_clear(&f->p, &f->ev);
    assert_false(f->p.active);
    assert_true(post_exists(&f->p)); /* a removed post still "exists" for the rules */
}

static void test_delete_already_deleted_post_is_rejected(void **state)
{
    fixture *f = *state;
    REFUSED(post_decide_delete(&f->p, "alice", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_ALREADY_REMOVED);
    REFUSED(post_decide_delete(&f->p, "eve", T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_ALREADY_REMOVED);
}

static void test_delete_by_another_user_is_rejected(void **state)
{
    fixture *f = *state;
    const char *others[] = {"eve", "bob", "alic", "alicee", " alice", "", NULL};
    for (size_t i = 0; i < COUNT(others); i++)
        REFUSED(post_decide_delete(&f->p, others[i], T0, &f->ev, &f->err), SM_ERR_RULE,
                MSG_NOT_AUTHOR);
    assert_true(f->p.active);
}

static void test_delete_author_match_ignores_case_including_non_ascii(void **state)
{
    const char *pairs[][2] = {{"alice", "ALICE"}, {"AlIcE", "aLiCe"}, {"ÉMILE", "émile"},
                              {"émile", "ÉMILE"}, {"Ñandú", "ñANDÚ"}};
    for (size_t i = 0; i < COUNT(pairs); i++) {
        post_state p;
        post_init(&p);
        create_post_at(&p, pairs[i][0], "hello", T0);
        sm_event ev = {0};
        sm_error err = {0};
        if (post_decide_delete(&p, pairs[i][1], T0, &ev, &err) != SM_OK)
            fail_msg("author '%s' could not delete as '%s': %s", pairs[i][0], pairs[i][1],
                     err.message);
        sm_event_clear(&ev);
        post_free(&p);
    }
}

/* ---- a post that does not exist ------------------------------------------------ */

static void test_decide_on_missing_post_is_not_found(void **state)
{
    /* The dispatcher names the stream it loaded: the text carries that id. */
    fixture *f = *state;
    post_state *p = &f->p;
    memcpy(p->id, "0f8c0000-0000-4000-8000-0000000000aa", sizeof p->id);
    sm_error e[6] = {{0}};
    sm_status st[6];
    st[0] = post_decide_edit_message(p, "m", T0, &f->ev, &e[0]);
    st[1] = post_decide_like(p, T0, &f->ev, &e[1]);
    st[2] = post_decide_add_comment(p, "c", "bob", T0, &f->ev, &e[2]);
    st[3] = post_decide_edit_comment(p, UNKNOWN_ID, "c", "bob", T0, &f->ev, &e[3]);
    st[4] = post_decide_remove_comment(p, UNKNOWN_ID, "bob", T0, &f->ev, &e[4]);
    st[5] = post_decide_delete(p, "alice", T0, &f->ev, &e[5]);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(st[i], SM_ERR_NOT_FOUND);
        assert_string_equal(e[i].message,
                            "Incorrect post Id provided! 0f8c0000-0000-4000-8000-0000000000aa");
    }
    assert_int_equal(f->ev.type, SM_EV_NONE);
    assert_false(post_exists(p));
}

/* ---- post_apply ----------------------------------------------------------------- */

static sm_event liked_event(const post_state *p, int64_t version)
{
    sm_event ev = {0};
    assert_true(sm_uuid_new(ev.event_id));
    memcpy(ev.aggregate_id, p->id, sizeof ev.aggregate_id);
    ev.type = SM_EV_POST_LIKED;
    ev.version = version;
    ev.timestamp_ms = T0;
    return ev;
}

/* post_apply(ev) fails with SM_ERR_INTERNAL and leaves the state as it was. */
static void assert_apply_refused(post_state *p, const sm_event *ev)
{
    int64_t version = p->version, likes = p->likes;
    size_t ncomments = p->ncomments;
    bool active = p->active;
    sm_error err = {0};
    assert_int_equal(post_apply(p, ev, &err), SM_ERR_INTERNAL);
    assert_int_equal(err.status, SM_ERR_INTERNAL);
    assert_true(err.message[0] != '\0');
    assert_int_equal(p->version, version);
    assert_int_equal(p->likes, likes);
    assert_int_equal(p->ncomments, ncomments);
    assert_int_equal(p->active, active);
}

static void test_apply_refuses_version_gap_and_leaves_state(void **state)
{
    fixture *f = *state;
    sm_event ev = liked_event(&f->p, f->p.version + 2);
    assert_apply_refused(&f->p, &ev);
    ev.version = f->p.version + 1; /* the right one still applies afterwards */
    assert_int_equal(post_apply(&f->p, &ev, &f->err), SM_OK);
    assert_int_equal(f->p.likes, 1);
}

static void test_apply_refuses_repeated_version_and_leaves_state(void **state)
{
    fixture *f = *state;
    sm_event ev = liked_event(&f->p, f->p.version + 1);
    assert_int_equal(post_apply(&f->p, &ev, &f->err), SM_OK);
    assert_apply_refused(&f->p, &ev); /* the same version again */
    ev.version = 0;
    assert_apply_refused(&f->p, &ev);
    assert_int_equal(f->p.likes, 1);
}

static void test_apply_first_event_must_be_post_created(void **state)
{
    fixture *f = *state; /* empty state */
    sm_event ev = liked_event(&f->p, 0);
    assert_true(sm_uuid_new(ev.aggregate_id));
    assert_apply_refused(&f->p, &ev);
    assert_false(post_exists(&f->p));
    ev.version = -1; /* nor can anything start below 0 */
    assert_apply_refused(&f->p, &ev);

    create_post_at(&f->p, "alice", "hello", T0); /* and PostCreated cannot come later */
    assert_int_equal(post_decide_create(f->p.id, "eve", "x", T0, &f->ev, &f->err), SM_OK);
    f->ev.version = 1;
    assert_apply_refused(&f->p, &f->ev);
    assert_string_equal(f->p.author, "alice");
}

static void test_apply_refuses_event_of_another_post(void **state)
{
    fixture *f = *state;
    sm_event ev = liked_event(&f->p, f->p.version + 1);
    assert_true(sm_uuid_new(ev.aggregate_id));
    assert_apply_refused(&f->p, &ev);
}

static void test_apply_full_history_yields_expected_state(void **state)
{
    fixture *f = *state; /* empty state */
    post_state *p = &f->p;
    sm_uuid_str c1, c2;
    create_post_at(p, "alice", "first", T0);                                          /* v0 */
    assert_int_equal(post_decide_edit_message(p, "second", T0 + 1000, &f->ev, &f->err), SM_OK);
    apply_and_clear(p, &f->ev);                                                       /* v1 */
    for (int i = 0; i < 2; i++) {                                                     /* v2-3 */
        assert_int_equal(post_decide_like(p, T0 + 2000, &f->ev, &f->err), SM_OK);
        apply_and_clear(p, &f->ev);
    }
    add_comment(p, "one", "bob", T0 + 4000, c1);                                      /* v4 */
    add_comment(p, "two", "carol", T0 + 5000, c2);                                    /* v5 */
    assert_int_equal(post_decide_edit_comment(p, c1, "one!", "bob", T0 + 6000, &f->ev, &f->err),
                     SM_OK);
    apply_and_clear(p, &f->ev);                                                       /* v6 */
    assert_int_equal(post_decide_remove_comment(p, c2, "carol", T0 + 7000, &f->ev, &f->err),
                     SM_OK);
    apply_and_clear(p, &f->ev);                                                       /* v7 */
    assert_int_equal(post_decide_delete(p, "ALICE", T0 + 8000, &f->ev, &f->err), SM_OK);
    apply_and_clear(p, &f->ev);                                                       /* v8 */

    assert_int_equal(p->version, 8);
    assert_false(p->active);
    assert_true(post_exists(p));
    assert_string_equal(p->author, "alice");
    assert_string_equal(p->message, "second");
    assert_int_equal(p->date_posted_ms, T0);
    assert_int_equal(p->likes, 2);
    assert_int_equal(p->ncomments, 1);
    const post_comment *c = post_find_comment(p, c1);
    assert_ptr_equal(c, &p->comments[0]);
    assert_string_equal(c->text, "one!");
    assert_string_equal(c->username, "bob");
    assert_int_equal(c->date_ms, T0 + 4000); /* editing keeps the comment date */
    assert_true(c->edited);
    assert_int_equal(c->edited_at_ms, T0 + 6000);
    assert_null(post_find_comment(p, c2));
    post_free(p);
    assert_int_equal(p->version, -1); /* post_free leaves a fresh state */
    assert_null(p->comments);
}

/* ---- decided events ----------------------------------------------------------------- */

static void test_each_decision_gets_a_fresh_event_id(void **state)
{
    fixture *f = *state;
    sm_event other = {0};
    assert_int_equal(post_decide_like(&f->p, T0 + 1, &other, &f->err), SM_OK);
    assert_int_equal(post_decide_like(&f->p, T0 + 2, &f->ev, &f->err), SM_OK);
    assert_next_event(&f->p, &other, SM_EV_POST_LIKED, T0 + 1);
    assert_next_event(&f->p, &f->ev, SM_EV_POST_LIKED, T0 + 2);
    assert_string_not_equal(other.event_id, f->ev.event_id);
    sm_event_clear(&other);
}

/* ---- post_to_json -------------------------------------------------------------------- */

static void assert_keys(const json_t *obj, const char *const *keys, size_t n)
{
    assert_true(json_is_object(obj));
    assert_int_equal(json_object_size(obj), n);
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(obj, keys[i]))
            fail_msg("missing key '%s'", keys[i]);
}

static const char *jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        fail_msg("'%s' is not a string", key);
    return s;
}

static void test_post_to_json_has_the_documented_shape(void **state)
{
    fixture *f = *state;
    sm_uuid_str c2;
    add_comment(&f->p, "two", "carol", T0 + 1, c2);
    assert_int_equal(
        post_decide_edit_comment(&f->p, c2, "two!", "carol", T0 + 2, &f->ev, &f->err), SM_OK);
    apply_and_clear(&f->p, &f->ev);
    assert_int_equal(post_decide_like(&f->p, T0, &f->ev, &f->err), SM_OK);
    apply_and_clear(&f->p, &f->ev);

    json_t *j = post_to_json(&f->p);
    static const char *const post_keys[] = {"id",    "author", "authorId", "message", "datePosted",
                                            "likes", "active", "version",  "comments"};
    assert_keys(j, post_keys, COUNT(post_keys));
    assert_true(json_is_null(json_object_get(j, "authorId"))); /* made without auth */
    assert_string_equal(jstr(j, "id"), f->p.id);
    assert_string_equal(jstr(j, "author"), "alice");
    assert_string_equal(jstr(j, "message"), "hello");
    assert_string_equal(jstr(j, "datePosted"), "2026-11-26T23:05:01.123Z");
    assert_int_equal(json_integer_value(json_object_get(j, "likes")), 1);
    assert_true(json_is_true(json_object_get(j, "active")));
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 4);

    json_t *comments = json_object_get(j, "comments");
    assert_true(json_is_array(comments));
    assert_int_equal(json_array_size(comments), 2);
    static const char *const comment_keys[] = {"commentId", "postId",      "username",
                                               "userId",    "comment",     "commentDate",
                                               "edited",    "editedAt"};
    json_t *first = json_array_get(comments, 0), *second = json_array_get(comments, 1);
    assert_keys(first, comment_keys, COUNT(comment_keys));
    assert_keys(second, comment_keys, COUNT(comment_keys));
    assert_string_equal(jstr(first, "commentId"), f->cid);
    assert_string_equal(jstr(first, "postId"), f->p.id);
    assert_string_equal(jstr(first, "username"), "bob");
    assert_true(json_is_null(json_object_get(first, "userId")));
    assert_string_equal(jstr(first, "comment"), "nice");
    assert_string_equal(jstr(first, "commentDate"), "2026-11-26T23:05:01.123Z");
    assert_true(json_is_false(json_object_get(first, "edited")));
    assert_true(json_is_null(json_object_get(first, "editedAt")));
    assert_string_equal(jstr(second, "commentId"), c2);
    assert_string_equal(jstr(second, "comment"), "two!");
    assert_string_equal(jstr(second, "commentDate"), "2026-11-26T23:05:01.124Z");
    assert_true(json_is_true(json_object_get(second, "edited")));
    assert_string_equal(jstr(second, "editedAt"), "2026-11-26T23:05:01.125Z");
    json_decref(j);
}

/* ---- authenticated actors (post_actor: SMPOST_AUTH=jwt) ------------------ */
#define MSG_NOT_EDITOR "You are not allowed to edit a post that was made by somebody else!"

static void test_authenticated_wrong_owner_is_forbidden_not_a_rule(void **state)
{
    fixture *f = *state;
    post_actor eve = {"eve", false, NULL};
    REFUSED(post_decide_edit_message_as(&f->p, "x", &eve, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_EDITOR);
    REFUSED(post_decide_delete_as(&f->p, &eve, T0, &f->ev, &f->err), SM_ERR_FORBIDDEN,
            MSG_NOT_AUTHOR);
    REFUSED(post_decide_edit_comment_as(&f->p, f->cid, "x", &eve, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
    REFUSED(post_decide_remove_comment_as(&f->p, f->cid, &eve, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
    /* the post author is not the comment's owner either */
    post_actor alice = {"alice", false, NULL};
    REFUSED(post_decide_remove_comment_as(&f->p, f->cid, &alice, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
}

static void test_authenticated_owner_acts_with_the_seed_name_rules(void **state)
{
    fixture *f = *state;
    post_actor alice = {"ALICE", false, NULL}, bob = {"bob", false, NULL};
    assert_int_equal(post_decide_edit_message_as(&f->p, "x", &alice, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_edit_comment_as(&f->p, f->cid, "y", &bob, T0, &f->ev, &f->err),
                     SM_OK);
    assert_string_equal(f->ev.username, "bob");
    sm_event_clear(&f->ev);
    post_actor bob_upper = {"Bob", false, NULL}; /* comment owners match exactly */
    REFUSED(post_decide_remove_comment_as(&f->p, f->cid, &bob_upper, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
    assert_int_equal(post_decide_delete_as(&f->p, &alice, T0, &f->ev, &f->err), SM_OK);
    assert_int_equal(f->ev.type, SM_EV_POST_REMOVED);
}

static void test_moderator_passes_owner_rules_but_not_the_others(void **state)
{
    fixture *f = *state;
    post_actor mod = {"mona", true, NULL};
    assert_int_equal(post_decide_edit_message_as(&f->p, "x", &mod, T0, &f->ev, &f->err), SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_edit_comment_as(&f->p, f->cid, "y", &mod, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    REFUSED(post_decide_edit_message_as(&f->p, " ", &mod, T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_BLANK_MESSAGE);
    assert_int_equal(post_decide_remove_comment_as(&f->p, f->cid, &mod, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_delete_as(&f->p, &mod, T0, &f->ev, &f->err), SM_OK);
    apply_and_clear(&f->p, &f->ev);
    REFUSED(post_decide_delete_as(&f->p, &mod, T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_ALREADY_REMOVED);
    REFUSED(post_decide_edit_message_as(&f->p, "x", &mod, T0, &f->ev, &f->err), SM_ERR_RULE,
            MSG_EDIT_INACTIVE);
}

/* ---- owners by user id (issue 16: the token's sub, not its name) -------- */
#define SUB_ALICE "auth0|alice-1"
#define SUB_BOB "auth0|bob-2"
#define SUB_IMPOSTOR "auth0|someone-else"

/* A post by alice (sub SUB_ALICE) with bob's comment (sub SUB_BOB), decided
 * by authenticated actors and folded back: owners are ids. */
static int setup_owned_post(void **state)
{
    setup_empty(state);
    fixture *f = *state;
    sm_uuid_str id;
    assert_true(sm_uuid_new(id));
    post_actor alice = {"alice", false, SUB_ALICE}, bob = {"bob", false, SUB_BOB};
    assert_int_equal(post_decide_create_as(id, "hello", &alice, T0, &f->ev, &f->err), SM_OK);
    apply_and_clear(&f->p, &f->ev);
    assert_int_equal(post_decide_add_comment_as(&f->p, "nice", &bob, T0, &f->ev, &f->err),
                     SM_OK);
    memcpy(f->cid, f->ev.comment_id, sizeof f->cid);
    apply_and_clear(&f->p, &f->ev);
    return 0;
}

static void test_authenticated_create_and_comment_record_owner_ids(void **state)
{
    fixture *f = *state;
    sm_uuid_str id;
    assert_true(sm_uuid_new(id));
    post_actor alice = {"alice", false, SUB_ALICE};
    assert_int_equal(post_decide_create_as(id, "hi", &alice, T0, &f->ev, &f->err), SM_OK);
    assert_string_equal(f->ev.author, "alice");
    assert_string_equal(f->ev.author_id, SUB_ALICE);
    apply_and_clear(&f->p, &f->ev);
    assert_string_equal(f->p.author_id, SUB_ALICE);
    post_actor bob = {"bob", false, SUB_BOB};
    assert_int_equal(post_decide_add_comment_as(&f->p, "c", &bob, T0, &f->ev, &f->err), SM_OK);
    assert_string_equal(f->ev.username, "bob");
    assert_string_equal(f->ev.user_id, SUB_BOB);
    apply_and_clear(&f->p, &f->ev);
    assert_string_equal(f->p.comments[0].user_id, SUB_BOB);
    /* without auth nothing is recorded, and the fold keeps NULL */
    assert_int_equal(post_decide_add_comment(&f->p, "d", "carol", T0, &f->ev, &f->err), SM_OK);
    assert_null(f->ev.user_id);
    apply_and_clear(&f->p, &f->ev);
    assert_null(f->p.comments[1].user_id);
    /* PostAt shows them (post_to_json) */
    json_t *j = post_to_json(&f->p);
    assert_string_equal(json_string_value(json_object_get(j, "authorId")), SUB_ALICE);
    json_t *cs = json_object_get(j, "comments");
    assert_string_equal(json_string_value(json_object_get(json_array_get(cs, 0), "userId")),
                        SUB_BOB);
    assert_true(json_is_null(json_object_get(json_array_get(cs, 1), "userId")));
    json_decref(j);
}

static void test_owner_by_id_may_act_under_another_display_name(void **state)
{
    fixture *f = *state;
    /* names are display names: the owners renamed themselves */
    post_actor alice = {"Alice Smith", false, SUB_ALICE}, bob = {"robert", false, SUB_BOB};
    assert_int_equal(post_decide_edit_message_as(&f->p, "x", &alice, T0, &f->ev, &f->err), SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_edit_comment_as(&f->p, f->cid, "y", &bob, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_remove_comment_as(&f->p, f->cid, &bob, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_delete_as(&f->p, &alice, T0, &f->ev, &f->err), SM_OK);
    assert_int_equal(f->ev.type, SM_EV_POST_REMOVED);
}

static void test_same_display_name_different_sub_is_forbidden(void **state)
{
    fixture *f = *state;
    post_actor fake_alice = {"alice", false, SUB_IMPOSTOR};
    post_actor fake_bob = {"bob", false, SUB_IMPOSTOR};
    REFUSED(post_decide_edit_message_as(&f->p, "x", &fake_alice, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_EDITOR);
    REFUSED(post_decide_delete_as(&f->p, &fake_alice, T0, &f->ev, &f->err), SM_ERR_FORBIDDEN,
            MSG_NOT_AUTHOR);
    REFUSED(post_decide_edit_comment_as(&f->p, f->cid, "x", &fake_bob, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
    REFUSED(post_decide_remove_comment_as(&f->p, f->cid, &fake_bob, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
    /* nor does a caller without a sub own anything that has an owner id */
    post_actor no_sub = {"alice", false, NULL};
    REFUSED(post_decide_delete_as(&f->p, &no_sub, T0, &f->ev, &f->err), SM_ERR_FORBIDDEN,
            MSG_NOT_AUTHOR);
    /* the post's owner does not own the comments on it */
    post_actor alice = {"alice", false, SUB_ALICE};
    REFUSED(post_decide_remove_comment_as(&f->p, f->cid, &alice, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER);
}

static void test_legacy_post_without_owner_id_belongs_to_the_name(void **state)
{
    fixture *f = *state; /* setup_post: made without auth, no owner ids */
    assert_null(f->p.author_id);
    assert_null(f->p.comments[0].user_id);
    post_actor alice = {"ALICE", false, "any-sub"}, bob = {"bob", false, "any-sub"};
    post_actor eve = {"eve", false, "any-sub"}, bob_upper = {"Bob", false, "any-sub"};
    REFUSED(post_decide_delete_as(&f->p, &eve, T0, &f->ev, &f->err), SM_ERR_FORBIDDEN,
            MSG_NOT_AUTHOR);
    REFUSED(post_decide_edit_comment_as(&f->p, f->cid, "y", &bob_upper, T0, &f->ev, &f->err),
            SM_ERR_FORBIDDEN, MSG_NOT_COMMENTER); /* comment names match exactly */
    assert_int_equal(post_decide_edit_comment_as(&f->p, f->cid, "y", &bob, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_delete_as(&f->p, &alice, T0, &f->ev, &f->err), SM_OK);
}

static void test_moderator_passes_owner_ids(void **state)
{
    fixture *f = *state;
    post_actor mod = {"mona", true, "auth0|mona"};
    assert_int_equal(post_decide_edit_message_as(&f->p, "x", &mod, T0, &f->ev, &f->err), SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_edit_comment_as(&f->p, f->cid, "y", &mod, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_remove_comment_as(&f->p, f->cid, &mod, T0, &f->ev, &f->err),
                     SM_OK);
    sm_event_clear(&f->ev);
    assert_int_equal(post_decide_delete_as(&f->p, &mod, T0, &f->ev, &f->err), SM_OK);
}

#define WITH(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH(test_authenticated_wrong_owner_is_forbidden_not_a_rule, setup_post),
        WITH(test_authenticated_owner_acts_with_the_seed_name_rules, setup_post),
        WITH(test_moderator_passes_owner_rules_but_not_the_others, setup_post),
        WITH(test_authenticated_create_and_comment_record_owner_ids, setup_empty),
        WITH(test_owner_by_id_may_act_under_another_display_name, setup_owned_post),
        WITH(test_same_display_name_different_sub_is_forbidden, setup_owned_post),
        WITH(test_legacy_post_without_owner_id_belongs_to_the_name, setup_post),
        WITH(test_moderator_passes_owner_ids, setup_owned_post),
        WITH(test_create_raises_post_created_at_version_zero, setup_empty),
        WITH(test_create_with_blank_author_is_rejected, setup_empty),
        WITH(test_create_with_blank_message_is_rejected, setup_empty),
        WITH(test_create_checks_author_before_message, setup_empty),
        WITH(test_edit_message_raises_message_updated_for_anyone, setup_post),
        WITH(test_edit_message_on_deleted_post_is_rejected_before_blank_check,
             setup_deleted_post),
        WITH(test_edit_message_with_blank_message_is_rejected, setup_post),
        WITH(test_like_on_deleted_post_is_rejected, setup_deleted_post),
        WITH(test_likes_are_unlimited_and_count_up, setup_post),
        WITH(test_add_comment_raises_comment_added_with_fresh_comment_id, setup_post),
        WITH(test_add_comment_on_deleted_post_is_rejected_first, setup_deleted_post),
        WITH(test_add_comment_with_blank_comment_is_rejected_before_username, setup_post),
        WITH(test_add_comment_with_blank_username_is_rejected, setup_post),
        WITH(test_edit_comment_by_its_author_raises_comment_updated, setup_post),
        WITH(test_edit_comment_on_deleted_post_is_rejected_first, setup_deleted_post),
        WITH(test_edit_unknown_comment_is_not_found_before_other_checks, setup_post),
        WITH(test_edit_removed_comment_is_not_found, setup_post),
        WITH(test_edit_comment_by_another_user_is_rejected_even_the_post_author, setup_post),
        WITH(test_edit_comment_username_match_is_case_sensitive, setup_post),
        WITH(test_edit_comment_with_blank_comment_is_rejected, setup_post),
        WITH(test_remove_comment_by_its_author_raises_comment_removed, setup_post),
        WITH(test_remove_comment_on_deleted_post_is_rejected_first, setup_deleted_post),
        WITH(test_remove_unknown_comment_is_not_found, setup_post),
        WITH(test_remove_comment_by_another_user_gets_the_seeds_edit_text, setup_post),
        WITH(test_delete_by_author_raises_post_removed, setup_post),
        WITH(test_delete_already_deleted_post_is_rejected, setup_deleted_post),
        WITH(test_delete_by_another_user_is_rejected, setup_post),
        WITH(test_delete_author_match_ignores_case_including_non_ascii, setup_empty),
        WITH(test_decide_on_missing_post_is_not_found, setup_empty),
        WITH(test_apply_refuses_version_gap_and_leaves_state, setup_post),
        WITH(test_apply_refuses_repeated_version_and_leaves_state, setup_post),
        WITH(test_apply_first_event_must_be_post_created, setup_empty),
        WITH(test_apply_refuses_event_of_another_post, setup_post),
        WITH(test_apply_full_history_yields_expected_state, setup_empty),
        WITH(test_each_decision_gets_a_fresh_event_id, setup_post),
        WITH(test_post_to_json_has_the_documented_shape, setup_post),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
