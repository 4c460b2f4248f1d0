/**
 * Bundle-only stand-in for `tr46` (UTS #46 IDNA processing, 231 KiB of mapping tables) in the
 * MongoDB bundle (esbuild `alias`, SAM `BuildProperties.Alias`; scripts/engines.ts). Its only
 * user there is `whatwg-url` (under mongodb-connection-string-url), which calls
 * `tr46.toASCII` for the host of a "special" URL (http:, https:, ws:, wss:, ftp:, file:) only.
 * The driver's mongodb:// and mongodb+srv:// connection strings are not special: their hosts
 * are parsed as opaque hosts and never reach tr46.
 *
 * So this answers only where its answer is provably tr46's, and throws otherwise: for a domain
 * of ASCII characters with no label starting with "xn--" (any case), tr46 (with any options
 * whatwg-url passes when parsing, i.e. without STD3 rules or DNS length checks) only lowercases
 * it, and reports no error (test/bundle-shims.test.ts compares every ASCII character). A
 * non-ASCII or punycode domain, or other options, throw an error saying that
 * internationalised domain names are not available in this bundle.
 */

export interface Tr46Options {
  checkHyphens?: boolean;
  checkBidi?: boolean;
  checkJoiners?: boolean;
  useSTD3ASCIIRules?: boolean;
  transitionalProcessing?: boolean;
  verifyDNSLength?: boolean;
  ignoreInvalidPunycode?: boolean;
}

function plainAscii(fn: string, domainName: string, options: Tr46Options): string {
  const ascii = /^[\x00-\x7f]*$/.test(domainName) && !domainName.split('.').some((label) => label.toLowerCase().startsWith('xn--'));
  if (!ascii || options.useSTD3ASCIIRules || options.verifyDNSLength || options.checkHyphens) {
    throw new Error(
      `tr46.${fn}: internationalised domain names (non-ASCII or "xn--" labels) and STD3/DNS-length/hyphen checks are not available in this bundle, which replaces tr46 by a stand-in for plain ASCII domains.`,
    );
  }
  return domainName.toLowerCase();
}

export function toASCII(domainName: string, options: Tr46Options = {}): string | null {
  return plainAscii('toASCII', domainName, options);
}

export function toUnicode(domainName: string, options: Tr46Options = {}): { domain: string; error: boolean } {
  return { domain: plainAscii('toUnicode', domainName, options), error: false };
}
