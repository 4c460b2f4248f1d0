import { readFileSync } from 'node:fs';
import { type CollectionTag, parse, type ScalarTag, type YAMLMap, type YAMLSeq } from 'yaml';

/** CloudFormation's short-form tags, turned into their long form ({Ref}, {"Fn::Sub"}, ...). */
function cfnTags(): Array<ScalarTag | CollectionTag> {
  const fns = ['Sub', 'If', 'Equals', 'Not', 'And', 'Or', 'Join', 'Split', 'Select', 'FindInMap', 'Base64', 'ImportValue', 'GetAZs', 'Cidr', 'GetAtt'];
  const tags: Array<ScalarTag | CollectionTag> = [
    { tag: '!Ref', resolve: (s: string) => ({ Ref: s }) },
    { tag: '!Condition', resolve: (s: string) => ({ Condition: s }) },
  ];
  for (const fn of fns) {
    const key = `Fn::${fn}`;
    tags.push({ tag: `!${fn}`, resolve: (s: string) => ({ [key]: fn === 'GetAtt' ? s.split('.') : s }) });
    const collection = (node: YAMLMap.Parsed | YAMLSeq.Parsed) => ({ [key]: node.toJSON() });
    tags.push({ tag: `!${fn}`, collection: 'seq', resolve: collection });
    tags.push({ tag: `!${fn}`, collection: 'map', resolve: collection });
  }
  return tags;
}

/** A CloudFormation/SAM template as plain JSON with the long-form intrinsics. */
export function loadTemplate(file: string): any {
  return parse(readFileSync(file, 'utf8'), { customTags: cfnTags() });
}
