/* SPDX-License-Identifier: MIT */
/*
 * common/cm_text: the one strict UTF-8 rule (RFC 3629) and the one JSON string escape
 * the probe, the ledger and both CLIs share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cm_text.h"

static void test_ascii_and_every_well_formed_length_are_valid(void **s)
{
    (void)s;
    assert_true(cm__utf8_valid(""));
    assert_true(cm__utf8_valid("plain ascii"));
    assert_true(cm__utf8_valid("\xc2\x80"));         /* U+0080, the first 2-byte */
    assert_true(cm__utf8_valid("\xdf\xbf"));         /* U+07FF */
    assert_true(cm__utf8_valid("\xe0\xa0\x80"));     /* U+0800, the first 3-byte */
    assert_true(cm__utf8_valid("\xed\x9f\xbf"));     /* U+D7FF, just below the surrogates */
    assert_true(cm__utf8_valid("\xee\x80\x80"));     /* U+E000, just above them */
    assert_true(cm__utf8_valid("\xf0\x90\x80\x80")); /* U+10000, the first 4-byte */
    assert_true(cm__utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac"));
}

static void test_overlong_forms_are_refused(void **s)
{
    (void)s;
    assert_false(cm__utf8_valid("\xc0\x80"));         /* NUL in 2 bytes */
    assert_false(cm__utf8_valid("\xc1\xbf"));         /* U+007F in 2 bytes */
    assert_false(cm__utf8_valid("\xe0\x80\x80"));     /* NUL in 3 bytes */
    assert_false(cm__utf8_valid("\xe0\x9f\xbf"));     /* U+07FF in 3 bytes */
    assert_false(cm__utf8_valid("\xf0\x80\x80\x80")); /* NUL in 4 bytes */
    assert_false(cm__utf8_valid("\xf0\x8f\xbf\xbf")); /* U+FFFF in 4 bytes */
    assert_false(cm__utf8_valid("a\xc0\xafz"));       /* the classic overlong '/' */
}

static void test_surrogates_are_refused(void **s)
{
    (void)s;
    assert_false(cm__utf8_valid("\xed\xa0\x80"));             /* U+D800 */
    assert_false(cm__utf8_valid("\xed\xbf\xbf"));             /* U+DFFF */
    assert_false(cm__utf8_valid("\xed\xa0\xbd\xed\xb2\xa9")); /* a CESU-8 pair */
}

static void test_above_u10ffff_is_refused_and_u10ffff_is_valid(void **s)
{
    (void)s;
    assert_true(cm__utf8_valid("\xf4\x8f\xbf\xbf"));  /* U+10FFFF */
    assert_false(cm__utf8_valid("\xf4\x90\x80\x80")); /* U+110000 */
    unsigned cp = 0;
    assert_int_equal(cm__utf8_seq((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
    assert_int_equal(cp, 0x10ffff);
}

static void test_bytes_f5_to_ff_and_c0_c1_never_start_a_character(void **s)
{
    (void)s;
    char buf[8];
    for (unsigned b = 0xf5; b <= 0xff; b++) {
        /* followed by continuation bytes that would complete a 4-byte form */
        snprintf(buf, sizeof buf, "%c\x80\x80\x80", (char)b);
        assert_false(cm__utf8_valid(buf));
        unsigned char one = (unsigned char)b;
        assert_int_equal(cm__utf8_seq(&one, 1, NULL), 0);
    }
    assert_false(cm__utf8_valid("\xc0"));
    assert_false(cm__utf8_valid("\xc1\x81"));
    assert_false(cm__utf8_valid("\x80")); /* a lone continuation byte */
    assert_false(cm__utf8_valid("a\xbf"
                                "b")); /* one in the middle */
}

static void test_truncated_sequences_are_refused(void **s)
{
    (void)s;
    assert_false(cm__utf8_valid("\xc3"));           /* at the end */
    assert_false(cm__utf8_valid("ok\xe2\x82"));     /* 2 of 3 at the end */
    assert_false(cm__utf8_valid("ok\xf0\x9f\x8e")); /* 3 of 4 at the end */
    assert_false(cm__utf8_valid("\xe2\x82z"));      /* cut by an ASCII byte */
    /* cm__utf8_seq never reads past n: the same bytes, n too short */
    assert_int_equal(cm__utf8_seq((const unsigned char *)"\xe2\x82\xac", 2, NULL), 0);
    assert_int_equal(cm__utf8_seq((const unsigned char *)"\xe2\x82\xac", 3, NULL), 3);
    assert_int_equal(cm__utf8_seq((const unsigned char *)"x", 0, NULL), 0);
}

static void test_plain_text_refuses_controls_separators_and_bidi(void **s)
{
    (void)s;
    assert_true(cm__text_plain("job-1 caf\xc3\xa9 \xf0\x9f\x8e\xac"));
    assert_false(cm__text_plain("a\nb"));
    assert_false(cm__text_plain("a\tb"));
    assert_false(cm__text_plain("\x1b[31m"));
    assert_false(cm__text_plain("\x7f"));
    assert_false(cm__text_plain("\xc2\x85"));     /* U+0085 NEL, a C1 control */
    assert_false(cm__text_plain("\xc2\x9f"));     /* U+009F */
    assert_true(cm__text_plain("\xc2\xa0"));      /* U+00A0 is printable */
    assert_false(cm__text_plain("\xe2\x80\xa8")); /* U+2028 */
    assert_false(cm__text_plain("\xe2\x80\xae")); /* U+202E RLO */
    assert_false(cm__text_plain("\xe2\x81\xa6")); /* U+2066 LRI */
    assert_true(cm__text_plain("\xe2\x81\xa5"));  /* U+2065 is not one of them */
    /* and everything cm__utf8_valid refuses */
    assert_false(cm__text_plain("\xed\xa0\x80"));
    assert_false(cm__text_plain("\xc0\x80"));
    assert_false(cm__text_plain("\xf5\x80\x80\x80"));
}

/* The RFC 3629 encoder, written out: the reference the decoder is checked against. */
static int encode(unsigned cp, unsigned char *b)
{
    if (cp < 0x80)
        return b[0] = (unsigned char)cp, 1;
    if (cp < 0x800)
        return b[0] = (unsigned char)(0xc0 | cp >> 6), b[1] = (unsigned char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000)
        return b[0] = (unsigned char)(0xe0 | cp >> 12),
               b[1] = (unsigned char)(0x80 | (cp >> 6 & 63)),
               b[2] = (unsigned char)(0x80 | (cp & 63)), 3;
    b[0] = (unsigned char)(0xf0 | cp >> 18), b[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    b[2] = (unsigned char)(0x80 | (cp >> 6 & 63)), b[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

/* Every scalar value decodes back to itself from its one encoding, and of all 2- and
 * 3-byte strings exactly the encodings of U+0080..U+07FF and of U+0800..U+FFFF without
 * the surrogates are sequences: nothing else slips through. */
static void test_every_code_point_round_trips_and_only_its_encoding_is_valid(void **s)
{
    (void)s;
    for (unsigned cp = 0; cp <= 0x10ffff; cp++) {
        unsigned char b[4];
        int n = encode(cp, b);
        unsigned got = 0;
        int k = cm__utf8_seq(b, (size_t)n, &got);
        if (cp >= 0xd800 && cp <= 0xdfff) {
            assert_int_equal(k, 0);
        } else {
            assert_int_equal(k, n);
            assert_int_equal(got, cp);
        }
    }
    unsigned two = 0, three = 0;
    for (unsigned x = 0; x < 0x10000; x++) {
        unsigned char b[3] = {(unsigned char)(x >> 8), (unsigned char)x, 0};
        two += cm__utf8_seq(b, 2, NULL) == 2;
    }
    for (unsigned x = 0; x < 0x1000000; x++) {
        unsigned char b[3] = {(unsigned char)(x >> 16), (unsigned char)(x >> 8), (unsigned char)x};
        three += cm__utf8_seq(b, 3, NULL) == 3;
    }
    assert_int_equal(two, 0x800 - 0x80);
    assert_int_equal(three, 0x10000 - 0x800 - 0x800);
}

/* cm__json_escape to a FILE*, read back. */
static char *escape_to_file(const char *in)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(cm__json_escape(f, in), 0);
    long n = ftell(f);
    rewind(f);
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return out;
}

/* Both forms give the same answer; checks it against want. */
static void assert_escapes_to(const char *in, const char *want)
{
    char *got = escape_to_file(in);
    assert_string_equal(got, want);
    free(got);
    char buf[256];
    assert_int_equal(cm__json_escape_buf(buf, sizeof buf, in), strlen(want));
    assert_string_equal(buf, want);
}

static void test_json_escapes_quotes_backslashes_and_controls(void **s)
{
    (void)s;
    assert_escapes_to("", "\"\"");
    assert_escapes_to("a\"b\\c", "\"a\\\"b\\\\c\"");
    assert_escapes_to("\n\t\x01\x1f\x7f", "\"\\u000a\\u0009\\u0001\\u001f\\u007f\"");
    assert_escapes_to("/ is kept", "\"/ is kept\"");
    assert_escapes_to(NULL, "null");
}

static void test_json_keeps_valid_utf8_as_is(void **s)
{
    (void)s;
    assert_escapes_to("caf\xc3\xa9 \xf4\x8f\xbf\xbf", "\"caf\xc3\xa9 \xf4\x8f\xbf\xbf\"");
}

static void test_json_replaces_each_invalid_byte_with_u_fffd(void **s)
{
    (void)s;
    assert_escapes_to("\xff", "\"\\ufffd\"");
    assert_escapes_to("\xf5\x80", "\"\\ufffd\\ufffd\"");
    assert_escapes_to("\xc0\x80", "\"\\ufffd\\ufffd\"");            /* overlong */
    assert_escapes_to("\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */
    assert_escapes_to("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    assert_escapes_to("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    assert_escapes_to("x\xe2\x82", "\"x\\ufffd\\ufffd\"");     /* truncated at the end */
    assert_escapes_to("\xe2\x82\"", "\"\\ufffd\\ufffd\\\"\""); /* cut by a quote */
}

static void test_json_buffer_truncates_on_an_escape_boundary(void **s)
{
    (void)s;
    char buf[6];
    /* "\"a\\u0001b\"" is 10 bytes: only "\"a" fits whole before the escape */
    assert_int_equal(cm__json_escape_buf(buf, sizeof buf,
                                         "a\x01"
                                         "b"),
                     10);
    assert_string_equal(buf, "\"a");
    char euro[5];
    /* "\"\xe2\x82\xac\"" is 5 bytes: the quote fits, the 3-byte character does not */
    assert_int_equal(cm__json_escape_buf(euro, 4, "\xe2\x82\xac"), 5);
    assert_string_equal(euro, "\"");
    assert_int_equal(cm__json_escape_buf(euro, sizeof euro, "\xe2\x82\xac"), 5);
    assert_string_equal(euro, "\"\xe2\x82\xac"); /* 4 bytes + NUL: the closing quote is cut */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_and_every_well_formed_length_are_valid),
        cmocka_unit_test(test_overlong_forms_are_refused),
        cmocka_unit_test(test_surrogates_are_refused),
        cmocka_unit_test(test_above_u10ffff_is_refused_and_u10ffff_is_valid),
        cmocka_unit_test(test_bytes_f5_to_ff_and_c0_c1_never_start_a_character),
        cmocka_unit_test(test_truncated_sequences_are_refused),
        cmocka_unit_test(test_plain_text_refuses_controls_separators_and_bidi),
        cmocka_unit_test(test_every_code_point_round_trips_and_only_its_encoding_is_valid),
        cmocka_unit_test(test_json_escapes_quotes_backslashes_and_controls),
        cmocka_unit_test(test_json_keeps_valid_utf8_as_is),
        cmocka_unit_test(test_json_replaces_each_invalid_byte_with_u_fffd),
        cmocka_unit_test(test_json_buffer_truncates_on_an_escape_boundary),
    };
    return cmocka_run_group_tests_name("common_text", tests, NULL, NULL);
}
