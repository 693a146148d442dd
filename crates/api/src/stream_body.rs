//! HTTP bodies that pass a streamed response on while the function writes it: each chunk is
//! sent (as one HTTP chunk) when it arrives, encoded the way the front end speaks.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use nimbus_core::stream::{BodyPart, ResponseBody, StreamEnd};

/// How one front end writes a stream onto the wire.
pub(crate) trait Encoder: Send + Unpin + 'static {
    /// The bytes to send for one chunk the function wrote.
    fn data(&mut self, chunk: Bytes) -> Bytes;
    /// The last bytes to send, if any, once the stream has ended.
    fn end(&mut self, end: StreamEnd) -> Option<Bytes>;
}

/// A streamed response as an HTTP body.
pub(crate) struct StreamingBody<E> {
    /// Bytes already read (e.g. body bytes after a prelude), sent first.
    first: Option<Bytes>,
    body: ResponseBody,
    encoder: E,
    done: bool,
}

impl<E: Encoder> StreamingBody<E> {
    pub(crate) fn new(first: Option<Bytes>, body: ResponseBody, encoder: E) -> Self {
        Self {
            first: first.filter(|b| !b.is_empty()),
            body,
            encoder,
            done: false,
        }
    }
}

impl<E: Encoder> http_body::Body for StreamingBody<E> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            let encoded = this.encoder.data(first);
            return Poll::Ready(Some(Ok(Frame::data(encoded))));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.body.poll_next(cx)) {
                Some(BodyPart::Data(chunk)) => {
                    let encoded = this.encoder.data(chunk);
                    if !encoded.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(encoded))));
                    }
                }
                Some(BodyPart::End(end)) => {
                    this.done = true;
                    if let Some(last) = this.encoder.end(end) {
                        return Poll::Ready(Some(Ok(Frame::data(last))));
                    }
                }
                None => this.done = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use nimbus_core::stream::{response_channel, InvocationResponse};

    struct Upper;

    impl Encoder for Upper {
        fn data(&mut self, chunk: Bytes) -> Bytes {
            Bytes::from(chunk.to_ascii_uppercase())
        }
        fn end(&mut self, end: StreamEnd) -> Option<Bytes> {
            end.error.is_none().then(|| Bytes::from_static(b"."))
        }
    }

    #[tokio::test]
    async fn chunks_are_encoded_in_order_and_the_end_last() {
        let (sink, receiver) = response_channel();
        tokio::spawn(async move {
            sink.start(None).await;
            sink.chunk(Bytes::from_static(b"b")).await;
            sink.end(StreamEnd::default()).await;
        });
        let Some(InvocationResponse::Streamed(streamed)) =
            receiver.begin("$LATEST".to_owned()).await
        else {
            panic!("expected a stream");
        };
        let body = StreamingBody::new(Some(Bytes::from_static(b"a")), streamed.body, Upper);
        let bytes = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(&bytes[..], b"AB.");
    }
}
