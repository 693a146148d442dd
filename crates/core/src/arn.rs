//! Where this Nimbus lives (region, account) and the ARNs built from it.

use crate::names::FunctionName;

/// The region and account every resource of this server belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountContext {
    /// Region code, e.g. `us-east-1`.
    pub region: String,
    /// Twelve-digit account id.
    pub account_id: String,
}

impl AccountContext {
    /// `arn:aws:lambda:<region>:<account>:function:<name>`.
    pub fn function_arn(&self, name: &FunctionName) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region,
            self.account_id,
            name.as_str()
        )
    }

    /// The function ARN with `:<qualifier>` appended.
    pub fn qualified_function_arn(&self, name: &FunctionName, qualifier: &str) -> String {
        format!("{}:{qualifier}", self.function_arn(name))
    }
}

impl Default for AccountContext {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            account_id: "000000000000".to_owned(),
        }
    }
}

/// Whether `arn` names an SQS queue or an SNS topic
/// (`arn:PARTITION:sqs|sns:REGION:ACCOUNT:NAME`), the targets of dead-letter queues and of
/// queue or topic destinations.
pub fn is_queue_or_topic(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && matches!(parts[2], "sqs" | "sns")
        && parts[3..].iter().all(|p| !p.is_empty())
}
