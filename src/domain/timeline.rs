//! The timeline's vocabulary: every event on a person's timeline is one of
//! these kinds, stored as its code (`subject.what_happened`). The history
//! shows them, and a reader filters by them.

codes! {
    /// What happened, on a person's timeline.
    TimelineKind {
        AttentionRecorded = "attention.recorded",
        AttentionVoided = "attention.voided",
        CaseImported = "case.imported",
        CaseNote = "case.note",
        CaseOpened = "case.opened",
        CaseReassigned = "case.reassigned",
        CaseStatusChanged = "case.status_changed",
        CaseStepDecided = "case.step_decided",
        CaseTransferRejected = "case.transfer_rejected",
        CaseTransferRequested = "case.transfer_requested",
        CaseTransferred = "case.transferred",
        CaseUpdated = "case.updated",
        DetentionHearing = "detention.hearing",
        DetentionOpened = "detention.opened",
        DetentionUpdated = "detention.updated",
        DetentionVisit = "detention.visit",
        PaymentApproved = "payment.approved",
        PaymentPaid = "payment.paid",
        PaymentRejected = "payment.rejected",
        PaymentRequested = "payment.requested",
        PaymentReversed = "payment.reversed",
        PaymentUpdated = "payment.updated",
        PersonMerged = "person.merged",
        PersonRegistered = "person.registered",
        PersonUpdated = "person.updated",
        ReferralSent = "referral.sent",
        ReferralStatusChanged = "referral.status_changed",
        RepatriationCreated = "repatriation.created",
        RepatriationStep = "repatriation.step",
        RepatriationUpdated = "repatriation.updated",
        TaskCreated = "task.created",
        TaskDone = "task.done",
    }
}
