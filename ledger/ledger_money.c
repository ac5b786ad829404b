/* SPDX-License-Identifier: MIT */
/*
 * ledger_money.c - the codes the ledger accepts for regions and currencies, and how
 * money is shown to people.
 *
 * Regions are "default" or an ISO 3166-1 alpha-2 code: the 249 officially assigned
 * codes (as in Debian's iso-codes 3166-1 list) plus "EU", the exceptionally reserved
 * code of the European Union, which billing uses for euro-area prices. Codes are
 * case-insensitive and stored upper-case. Currencies are the ISO 4217 codes of the
 * table below with their minor-unit exponent (USD 2: 15 minor units are 0.15 USD;
 * JPY 0; KWD 3); a currency outside the table is refused rather than shown with
 * guessed decimals.
 */
#include "ledger_internal.h"

#include <stdio.h>
#include <string.h>

/* ISO 3166-1 alpha-2, officially assigned, sorted; two letters each. */
static const char iso3166[] = "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJ"
                              "BLBMBNBOBQBRBSBTBVBWBYBZCACCCDCFCGCHCICKCLCMCNCOCR"
                              "CUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFR"
                              "GAGBGDGEGFGGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHU"
                              "IDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKNKPKRKWKYKZ"
                              "LALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQ"
                              "MRMSMTMUMVMWMXMYMZNANCNENFNGNINLNONPNRNUNZOMPAPEPF"
                              "PGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSI"
                              "SJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTR"
                              "TTTVTWTZUAUGUMUSUYUZVAVCVEVGVIVNVUWFWSYEYTZAZMZW";

/* ISO 4217 codes the ledger prices in, with their minor-unit exponent. */
static const struct {
    char code[4];
    int exponent;
} iso4217[] = {
    {"AED", 2}, {"ARS", 2}, {"AUD", 2}, {"BGN", 2}, {"BHD", 3}, {"BRL", 2}, {"CAD", 2}, {"CHF", 2},
    {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CZK", 2}, {"DKK", 2}, {"EGP", 2}, {"EUR", 2}, {"GBP", 2},
    {"HKD", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"ISK", 0}, {"JOD", 3}, {"JPY", 0},
    {"KES", 2}, {"KRW", 0}, {"KWD", 3}, {"MAD", 2}, {"MXN", 2}, {"MYR", 2}, {"NGN", 2}, {"NOK", 2},
    {"NZD", 2}, {"OMR", 3}, {"PEN", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2}, {"QAR", 2}, {"RON", 2},
    {"SAR", 2}, {"SEK", 2}, {"SGD", 2}, {"THB", 2}, {"TND", 3}, {"TRY", 2}, {"TWD", 2}, {"UAH", 2},
    {"USD", 2}, {"VND", 0}, {"ZAR", 2},
};

int cm_ledger_currency_exponent(const char *code)
{
    if (!code)
        return -1;
    for (size_t i = 0; i < sizeof iso4217 / sizeof iso4217[0]; i++)
        if (strcmp(iso4217[i].code, code) == 0)
            return iso4217[i].exponent;
    return -1;
}

char *cm_ledger_money_format(int64_t minor, const char *currency, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    int e = cm_ledger_currency_exponent(currency);
    const char *cur = currency ? currency : "";
    if (e <= 0) { /* no decimals, or a currency the ledger does not know: as stored */
        snprintf(buf, size, "%lld %s", (long long)minor, cur);
        return buf;
    }
    int64_t scale = e == 1 ? 10 : e == 2 ? 100 : 1000;
    /* Work on the magnitude as unsigned: -INT64_MIN does not fit. */
    uint64_t mag = minor < 0 ? 0 - (uint64_t)minor : (uint64_t)minor;
    char frac[4];
    snprintf(frac, sizeof frac, "%03llu", (unsigned long long)(mag % (uint64_t)scale));
    snprintf(buf, size, "%s%llu.%s %s", minor < 0 ? "-" : "",
             (unsigned long long)(mag / (uint64_t)scale), frac + (3 - e), cur);
    return buf;
}

int cm__region_normalize(cm_ledger *l, const char *in, char *out, size_t size)
{
    if (!in || !*in)
        in = "default";
    if (strcmp(in, "default") == 0) {
        snprintf(out, size, "%s", in);
        return CM_LEDGER_OK;
    }
    char up[3] = {0};
    int ok = strlen(in) == 2;
    for (int i = 0; ok && i < 2; i++) {
        char c = in[i];
        up[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
        ok = up[i] >= 'A' && up[i] <= 'Z';
    }
    int known = ok && strcmp(up, "EU") == 0;
    for (size_t i = 0; ok && !known && i + 1 < sizeof iso3166; i += 2)
        known = iso3166[i] == up[0] && iso3166[i + 1] == up[1];
    if (!known)
        return cm__ledger_fail(l, CM_LEDGER_E_INVALID,
                               "region '%.40s' is not \"default\" or an ISO 3166-1 alpha-2 country "
                               "code (such as US, DE, IN, JP)",
                               in);
    snprintf(out, size, "%s", up);
    return CM_LEDGER_OK;
}
