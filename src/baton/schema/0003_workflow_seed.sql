-- The default routing table (BAZINGA workflow 1.3.0, 47 transitions), its status aliases, the five
-- special rules and the prompt markers of the eight agents. Generated once from the project brief's
-- workflow.md; users replace it with `baton workflow load FILE` (rows then have source 'user').

INSERT INTO workflow_transitions (agent_type, status, next_agent, action, include_context, modifiers) VALUES
    ('developer', 'READY_FOR_QA', 'qa_expert', 'spawn', '["dev_output","files_changed","test_results"]', '{}'),
    ('developer', 'READY_FOR_REVIEW', 'tech_lead', 'spawn', '["dev_output","files_changed"]', '{}'),
    ('developer', 'BLOCKED', 'investigator', 'spawn', '["blocker_details"]', '{"fallback_agent":"tech_lead"}'),
    ('developer', 'PARTIAL', 'developer', 'respawn', '["partial_work","remaining_tasks"]', '{}'),
    ('developer', 'INCOMPLETE', 'developer', 'respawn', '["partial_work","remaining_tasks"]', '{}'),
    ('developer', 'ESCALATE_SENIOR', 'senior_software_engineer', 'spawn', '["dev_output","escalation_reason"]', '{}'),
    ('developer', 'NEEDS_TECH_LEAD_VALIDATION', 'tech_lead', 'spawn', '["validation_request","uncertainty_details"]', '{}'),
    ('developer', 'SPAWN_INVESTIGATOR', 'investigator', 'spawn', '["investigation_scope","dev_attempt_summary","blocker_details"]', '{}'),
    ('senior_software_engineer', 'READY_FOR_QA', 'qa_expert', 'spawn', '["dev_output","files_changed","test_results"]', '{}'),
    ('senior_software_engineer', 'READY_FOR_REVIEW', 'tech_lead', 'spawn', '["dev_output","files_changed"]', '{}'),
    ('senior_software_engineer', 'BLOCKED', 'tech_lead', 'spawn', '["blocker_details"]', '{}'),
    ('senior_software_engineer', 'NEEDS_TECH_LEAD_VALIDATION', 'tech_lead', 'spawn', '["validation_request"]', '{}'),
    ('senior_software_engineer', 'ROOT_CAUSE_FOUND', 'tech_lead', 'spawn', '["root_cause_analysis","recommendation","evidence"]', '{"mandatory_review":true}'),
    ('senior_software_engineer', 'SPAWN_INVESTIGATOR', 'investigator', 'spawn', '["investigation_scope","sse_attempt_summary","hypothesis_matrix"]', '{}'),
    ('senior_software_engineer', 'PARTIAL', 'senior_software_engineer', 'respawn', '["partial_work","remaining_tasks"]', '{}'),
    ('qa_expert', 'PASS', 'tech_lead', 'spawn', '["qa_report","test_results","coverage"]', '{}'),
    ('qa_expert', 'FAIL', 'developer', 'respawn', '["qa_failures","failing_tests"]', '{"escalation_check":true}'),
    ('qa_expert', 'FAIL_ESCALATE', 'senior_software_engineer', 'spawn', '["qa_report","challenge_level","escalation_reason"]', '{}'),
    ('qa_expert', 'PARTIAL', 'tech_lead', 'spawn', '["qa_report","partial_results"]', '{}'),
    ('qa_expert', 'BLOCKED', 'tech_lead', 'spawn', '["blocker_details"]', '{}'),
    ('qa_expert', 'FLAKY', 'tech_lead', 'spawn', '["flaky_test_details","qa_report"]', '{}'),
    ('tech_lead', 'APPROVED', 'developer', 'spawn_merge', '["approval_notes"]', '{"then":"check_phase"}'),
    ('tech_lead', 'APPROVED_WITH_NOTES', 'developer', 'spawn_merge', '["approval_notes","non_blocking_suggestions"]', '{"then":"check_phase"}'),
    ('tech_lead', 'CHANGES_REQUESTED', 'developer', 'respawn', '["tl_feedback","required_changes"]', '{"escalation_check":true}'),
    ('tech_lead', 'SPAWN_INVESTIGATOR', 'investigator', 'spawn', '["investigation_scope"]', '{}'),
    ('tech_lead', 'ESCALATE_TO_OPUS', 'tech_lead', 'respawn', '["escalation_reason","original_review"]', '{"model_override":"opus"}'),
    ('tech_lead', 'UNBLOCKING_GUIDANCE_PROVIDED', '_return_to_blocked', 'spawn', '["guidance","unblocking_steps"]', '{}'),
    ('tech_lead', 'UNBLOCKING_GUIDANCE', '_return_to_blocked', 'spawn', '["guidance","unblocking_steps"]', '{}'),
    ('tech_lead', 'ARCHITECTURAL_DECISION_MADE', 'developer', 'spawn', '["decision","implementation_guidance"]', '{}'),
    ('project_manager', 'PLANNING_COMPLETE', 'developer', 'spawn_batch', '["task_groups"]', '{"max_parallel":4}'),
    ('project_manager', 'CONTINUE', 'developer', 'spawn_batch', '["pending_groups"]', '{"max_parallel":4}'),
    ('project_manager', 'BAZINGA', NULL, 'validate_then_end', '["completion_summary"]', '{}'),
    ('project_manager', 'NEEDS_CLARIFICATION', NULL, 'pause_for_user', '["clarification_question"]', '{}'),
    ('project_manager', 'INVESTIGATION_NEEDED', 'investigator', 'spawn', '["investigation_request"]', '{}'),
    ('project_manager', 'INVESTIGATION_ONLY', NULL, 'end_session', '["investigation_answers"]', '{}'),
    ('investigator', 'ROOT_CAUSE_FOUND', 'tech_lead', 'spawn', '["root_cause","fix_guidance","investigation_summary","evidence"]', '{}'),
    ('investigator', 'INVESTIGATION_INCOMPLETE', 'tech_lead', 'spawn', '["partial_findings","iterations_completed","hypotheses_tested","next_steps"]', '{}'),
    ('investigator', 'BLOCKED', 'tech_lead', 'spawn', '["blocker_details","progress_summary"]', '{}'),
    ('investigator', 'EXHAUSTED', 'tech_lead', 'spawn', '["hypotheses_tested","elimination_reasons","recommendations"]', '{}'),
    ('investigator', 'NEED_DEVELOPER_DIAGNOSTIC', 'developer', 'spawn', '["diagnostic_request","hypothesis","expected_output"]', '{}'),
    ('investigator', 'HYPOTHESIS_ELIMINATED', 'investigator', 'respawn', '["eliminated_hypothesis","next_hypothesis","iteration","evidence"]', '{"iteration_budget_check":true}'),
    ('investigator', 'NEED_MORE_ANALYSIS', 'investigator', 'respawn', '["analysis_needed","current_hypothesis","iteration"]', '{"iteration_budget_check":true}'),
    ('requirements_engineer', 'READY_FOR_REVIEW', 'tech_lead', 'spawn', '["research_deliverable"]', '{"bypass_qa":true}'),
    ('requirements_engineer', 'BLOCKED', 'investigator', 'spawn', '["blocker_details"]', '{}'),
    ('requirements_engineer', 'PARTIAL', 'requirements_engineer', 'respawn', '["partial_research"]', '{}'),
    ('validator', 'ACCEPT', NULL, 'end_session', '["validator_verdict","completion_summary"]', '{}'),
    ('validator', 'REJECT', 'project_manager', 'spawn', '["validator_verdict","failed_checks","remediation_guidance"]', '{}');

INSERT INTO workflow_aliases (agent_type, alias, status) VALUES
    ('investigator', 'INCOMPLETE', 'INVESTIGATION_INCOMPLETE'),
    ('investigator', 'WAITING_FOR_RESULTS', 'NEED_DEVELOPER_DIAGNOSTIC');

INSERT INTO workflow_special_rules (rule_name, description, config) VALUES
    ('testing_mode', 'when the session''s testing mode (metadata.testing_mode) is disabled or minimal, READY_FOR_QA goes to tech_lead instead of QA', '{"modes":["disabled","minimal"],"affected_statuses":["READY_FOR_QA"],"override_next_agent":"tech_lead"}'),
    ('escalation_after_failures', 'when the transition has escalation_check and the group''s failure counter (QA: qa_attempts; tech lead: tl_review_attempts; else revision_count) has reached the threshold, route to senior_software_engineer instead', '{"threshold":2,"escalation_agent":"senior_software_engineer"}'),
    ('security_sensitive', 'a group marked security-sensitive goes to senior_software_engineer instead of developer, with a mandatory tech-lead review', '{"force_agent":"senior_software_engineer","mandatory_review":true}'),
    ('research_tasks', 'research task groups (a specialization named research) go to requirements_engineer, at most 2 in parallel', '{"agent":"requirements_engineer","max_parallel":2}'),
    ('iteration_budget_check', 'investigator respawns stop when the group''s investigation iteration budget is spent, routing to tech_lead', '{"budget":5,"fallback_agent":"tech_lead"}');

INSERT INTO agent_markers (agent_type, markers) VALUES
    ('developer', '["NO DELEGATION","READY_FOR_QA","READY_FOR_REVIEW","BLOCKED","ESCALATE_SENIOR"]'),
    ('senior_software_engineer', '["NO DELEGATION","READY_FOR_QA","READY_FOR_REVIEW","BLOCKED","SPAWN_INVESTIGATOR"]'),
    ('qa_expert', '["PASS","FAIL","BLOCKED","Challenge Level"]'),
    ('tech_lead', '["APPROVED","APPROVED_WITH_NOTES","CHANGES_REQUESTED","SPAWN_INVESTIGATOR"]'),
    ('project_manager', '["BAZINGA","SCOPE IS IMMUTABLE","CONTINUE","NEEDS_CLARIFICATION","PLANNING_COMPLETE"]'),
    ('investigator', '["ROOT_CAUSE_FOUND","BLOCKED"]'),
    ('requirements_engineer', '["READY_FOR_REVIEW","BLOCKED"]'),
    ('validator', '["ACCEPT","REJECT"]');
