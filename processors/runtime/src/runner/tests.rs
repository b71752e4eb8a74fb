use super::*;

#[test]
fn fencing_and_authorization_are_fatal_the_rest_transient() {
    for code in [
        RDKafkaErrorCode::ProducerFenced,
        RDKafkaErrorCode::Fenced,
        RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        RDKafkaErrorCode::TopicAuthorizationFailed,
        RDKafkaErrorCode::Fatal,
    ] {
        let e = LoopError::kafka("x", KafkaError::MessageProduction(code));
        assert!(e.is_fatal(), "{code:?}");
    }
    for code in
        [RDKafkaErrorCode::RequestTimedOut, RDKafkaErrorCode::NotLeaderForPartition, RDKafkaErrorCode::QueueFull]
    {
        let e = LoopError::kafka("x", KafkaError::MessageProduction(code));
        assert!(!e.is_fatal(), "{code:?}");
    }
    #[cfg(feature = "test-hooks")]
    assert!(!LoopError::Injected(crate::hooks::Injected("hook".into())).is_fatal());
}
