import { FramingError } from "../errors.js";

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isJsonWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

/**
 * Splits a byte stream of back-to-back JSON texts (RFC 7047 §4: no delimiter)
 * into parsed values. It scans bytes, not characters: every structural byte
 * of JSON is ASCII and never occurs inside a multi-byte UTF-8 sequence, so a
 * character split across chunks is only decoded once its message is whole.
 * Each byte is scanned once and each message joined once, so a large reply
 * arriving in many chunks costs linear time.
 */
export class JsonStreamDecoder {
  /** Pieces of the unfinished message from earlier chunks. */
  private pieces: Buffer[] = [];
  private pieceBytes = 0;
  private inMessage = false;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(private readonly maxMessageBytes = 256 * 1024 * 1024) {}

  /** Feeds one chunk; returns every message it completed, in order. */
  push(chunk: Buffer): unknown[] {
    const messages: unknown[] = [];
    let messageStart = this.inMessage ? 0 : -1;

    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (!this.inMessage) {
        if (isJsonWhitespace(byte)) continue;
        if (byte !== OPEN_BRACE && byte !== OPEN_BRACKET) {
          throw new FramingError(
            `expected '{' or '[' to start a JSON-RPC message, found ${JSON.stringify(String.fromCharCode(byte))}`,
          );
        }
        this.inMessage = true;
        this.depth = 0;
        messageStart = i;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (byte === BACKSLASH) this.escaped = true;
        else if (byte === QUOTE) this.inString = false;
        continue;
      }
      if (byte === QUOTE) this.inString = true;
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) this.depth++;
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) {
          messages.push(this.parse(chunk.subarray(messageStart, i + 1)));
          this.inMessage = false;
          messageStart = -1;
        }
      }
    }

    if (this.inMessage) {
      const tail = chunk.subarray(messageStart);
      this.pieces.push(tail);
      this.pieceBytes += tail.length;
      if (this.pieceBytes > this.maxMessageBytes) {
        throw new FramingError(`message exceeds ${this.maxMessageBytes} bytes`);
      }
    }
    return messages;
  }

  private parse(last: Buffer): unknown {
    let bytes = last;
    if (this.pieces.length > 0) {
      this.pieces.push(last);
      bytes = Buffer.concat(this.pieces, this.pieceBytes + last.length);
      this.pieces = [];
      this.pieceBytes = 0;
    }
    try {
      return JSON.parse(bytes.toString("utf8"));
    } catch (err) {
      throw new FramingError(`malformed JSON message: ${(err as Error).message}`);
    }
  }

  /** True when bytes of an unfinished message are held. */
  get pending(): boolean {
    return this.inMessage;
  }
}
