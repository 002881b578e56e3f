/**
 * A minimal XML well-formedness check (XML 1.0 §2.1 "well-formed" in the small): one root
 * element, properly nested and closed tags, quoted attributes without duplicates, no raw `<` or
 * stray `&` in text or attribute values, comments closed. Returns the element tree for queries,
 * or throws with the offset of the first problem. Enough for the SVG the charts write; not a
 * general XML parser (no DOCTYPE, CDATA or processing instructions).
 */

export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

const NAME = /^[A-Za-z_][\w.:-]*/
const ENTITY = /^&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/

function checkText (text: string, at: number): void {
  for (let i = text.indexOf('&'); i !== -1; i = text.indexOf('&', i + 1)) {
    if (!ENTITY.test(text.slice(i))) throw new Error(`XML: a bare & at ${at + i}`)
  }
}

export function parseXml (source: string): XmlElement {
  let i = 0
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  while (i < source.length) {
    const lt = source.indexOf('<', i)
    const text = source.slice(i, lt === -1 ? source.length : lt)
    checkText(text, i)
    if (stack.length === 0 && text.trim() !== '') throw new Error(`XML: text outside the root element at ${i}`)
    if (stack.length > 0) (stack[stack.length - 1] as XmlElement).text += text
    if (lt === -1) break
    i = lt
    if (source.startsWith('<!--', i)) {
      const end = source.indexOf('-->', i + 4)
      if (end === -1) throw new Error(`XML: unclosed comment at ${i}`)
      i = end + 3
      continue
    }
    if (source.startsWith('</', i)) {
      const name = NAME.exec(source.slice(i + 2))?.[0]
      const close = source.indexOf('>', i)
      const open = stack.pop()
      if (name === undefined || close === -1 || source.slice(i + 2 + name.length, close).trim() !== '') throw new Error(`XML: bad end tag at ${i}`)
      if (open?.name !== name) throw new Error(`XML: </${name}> at ${i} closes <${open?.name ?? 'nothing'}>`)
      i = close + 1
      continue
    }
    const name = NAME.exec(source.slice(i + 1))?.[0]
    if (name === undefined) throw new Error(`XML: bad tag at ${i}`)
    let j = i + 1 + name.length
    const element: XmlElement = { name, attrs: {}, children: [], text: '' }
    for (;;) {
      const space = /^\s*/.exec(source.slice(j))?.[0].length ?? 0
      j += space
      if (source.startsWith('/>', j)) { j += 2; break }
      if (source[j] === '>') { j += 1; stack.push(element); break }
      if (space === 0) throw new Error(`XML: expected whitespace before an attribute at ${j}`)
      const attr = /^([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/.exec(source.slice(j))
      if (attr === null) throw new Error(`XML: bad attribute at ${j}`)
      const key = attr[1] as string
      if (key in element.attrs) throw new Error(`XML: attribute ${key} twice at ${j}`)
      const value = attr[2] ?? attr[3] ?? ''
      checkText(value, j)
      element.attrs[key] = value
      j += attr[0].length
    }
    const parent = stack.at(element === stack.at(-1) ? -2 : -1)
    if (parent !== undefined) parent.children.push(element)
    else if (root === undefined) root = element
    else throw new Error(`XML: a second root element <${name}> at ${i}`)
    i = j
  }
  if (stack.length > 0) throw new Error(`XML: <${stack.at(-1)?.name}> is never closed`)
  if (root === undefined) throw new Error('XML: no root element')
  return root
}

/** Every element below `root` (depth first) that satisfies `match`. */
export function findAll (root: XmlElement, match: (e: XmlElement) => boolean): XmlElement[] {
  const out: XmlElement[] = []
  const walk = (e: XmlElement): void => { for (const c of e.children) { if (match(c)) out.push(c); walk(c) } }
  walk(root)
  return out
}

/** The text of an element and its descendants. */
export function textOf (e: XmlElement): string {
  return e.text + e.children.map(textOf).join('')
}
